"""Stdio sessions share one warm engine: real `corpus serve` processes, the SDK's client, a real ingest between."""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from pydantic import TypeAdapter

from connectors import load_config
from ingest.pipeline import ingest
from ingest.progress import Progress
from server.front import LOG_NAME, engine_pid, socket_path
from server.hits import Hit
from server.search import Searcher
from tests.conftest import docs_source, write_config

pytestmark = pytest.mark.slow  # stdio sessions and the engine run as subprocesses

IDLE = 3  # seconds; the engine's [server] idle in the test config
WAIT = 120  # bound on anything that waits for an engine on a loaded machine
QUESTIONS = ["how many weeks of parental leave", "laptop replacement", "quokka budget"]


@pytest.fixture
def store(tmp_path, embedder, monkeypatch):
    """A small ingested store and a private runtime folder (short, so the socket path fits)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "leave.md").write_text("# Leave\n\nParental leave is sixteen weeks at full pay.\n")
    (docs / "laptops.md").write_text("# Laptops\n\nEveryone gets a new laptop every three years.\n")
    config_path = write_config(tmp_path, docs_source("handbook", docs), extra=f"[server]\nidle = {IDLE}\n")
    ingest(load_config(config_path), embedder=embedder, progress=Progress(interval=999))
    runtime = Path(tempfile.mkdtemp(prefix="ce-", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    yield config_path, docs
    for pid in engines(config_path):  # a failed test must not leave its engine behind
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(runtime, ignore_errors=True)


def engines(config_path: Path) -> list[int]:
    """Live engine processes for this config, whether or not they listen."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
            state = (cmdline.parent / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"server.engine" in args and os.fsencode(config_path.resolve()) in args and state != "Z":
            found.append(int(cmdline.parent.name))
    return found


def started(config_path: Path) -> int:
    """Engine processes started for this store, whether they came to listen or found one listening."""
    return len(re.findall(r"pid \d+ (serves|finds an engine) ", (config_path.parent / "store" / LOG_NAME).read_text()))


def serve(config_path: Path) -> list[str]:
    return [sys.executable, "-m", "cli.main", "--config", str(config_path), "serve"]


async def open_session(stack: AsyncExitStack, config_path: Path) -> ClientSession:
    """A `corpus serve` process and the SDK's client on it, closed with the stack."""
    command = serve(config_path)
    server = StdioServerParameters(command=command[0], args=command[1:], cwd=str(config_path.parent),
                                   env={"XDG_RUNTIME_DIR": os.environ["XDG_RUNTIME_DIR"]})
    read, write = await stack.enter_async_context(stdio_client(server))
    return await stack.enter_async_context(ClientSession(read, write))


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {WAIT} s")
        time.sleep(0.2)


async def answers(session: ClientSession) -> list[list[dict]]:
    replies = [await session.call_tool("search", {"query": q, "limit": 5}) for q in QUESTIONS]
    assert not any(reply.is_error for reply in replies), [r.content[0].text for r in replies if r.is_error]
    return [reply.structured_content["hits"] for reply in replies]


def fresh_answers(config_path: Path, embedder) -> list[list[dict]]:
    searcher = Searcher(load_config(config_path), embedder)
    try:
        return [TypeAdapter(list[Hit]).dump_python(searcher.search(q, limit=5), mode="json") for q in QUESTIONS]
    finally:
        searcher.replica.close()


def test_five_sessions_and_an_ingest_answer_as_a_fresh_searcher_from_one_engine(store, embedder):
    config_path, docs = store

    async def body():
        async with AsyncExitStack() as stack:
            sessions = [await open_session(stack, config_path) for _ in range(5)]  # five fronts start together
            await asyncio.gather(*(s.initialize() for s in sessions))
            before = await asyncio.gather(*(answers(s) for s in sessions))
            live = engines(config_path), engine_pid(config_path)

            (docs / "quokka.md").write_text("# Quokka fund\n\nThe quokka budget is forty-two zorkmids a year.\n")
            await asyncio.to_thread(ingest, load_config(config_path), embedder=embedder,
                                    progress=Progress(interval=999))
            expected = fresh_answers(config_path, embedder)
            after = []
            for session in sessions:  # the engine picks up the new generation within a second or so
                deadline = time.monotonic() + WAIT
                while (got := await answers(session)) != expected and time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                after.append(got)
            return before, live, expected, after

    before, (live, listening), expected, after = asyncio.run(body())
    assert live == [listening]
    assert started(config_path) == 1  # five fronts starting together start one engine, not one each
    assert all(answer == before[0] for answer in before)
    assert "zorkmids" in expected[2][0]["text"] and not any("zorkmids" in h["text"] for h in before[0][2])
    assert after == [expected] * 5

    # no session left: the engine exits after its idle time and takes its socket with it
    wait_until(lambda: not engines(config_path), "the idle engine exited")
    assert not socket_path(config_path).exists()


def test_a_killed_engine_ends_its_sessions_with_one_line_and_a_new_session_starts_another(store):
    config_path, _ = store
    front = subprocess.Popen(serve(config_path), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, cwd=config_path.parent)
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}}
    front.stdin.write(json.dumps(initialize).encode() + b"\n")
    front.stdin.flush()
    assert select.select([front.stdout], [], [], WAIT)[0], "no reply from the engine"
    reply = json.loads(front.stdout.readline())  # the engine answered through the front
    assert reply["id"] == 1 and reply["result"]["serverInfo"]["name"] == "corpus"
    (engine,) = engines(config_path)

    os.kill(engine, signal.SIGKILL)
    status = front.wait(timeout=WAIT)
    error = front.stderr.read().decode()
    front.stdin.close()
    front.stdout.close()
    front.stderr.close()
    assert status == 1
    assert error.count("\n") == 1 and "engine stopped" in error
    assert str(config_path.parent / "store" / LOG_NAME) in error

    async def search_again():
        async with AsyncExitStack() as stack:
            session = await open_session(stack, config_path)
            await session.initialize()
            return await answers(session)

    assert asyncio.run(search_again())[0][0]["text"].startswith("Parental leave")
    assert len(engines(config_path)) == 1 and engines(config_path) != [engine] and started(config_path) == 2
