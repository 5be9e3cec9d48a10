"""Many readers, one writer: three standalone `corpus serve` processes (each its own reader of the store) search
while `corpus ingest` writes."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time

import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

from connectors import load_config
from ingest.pipeline import ingest
from server.search import Searcher
from tests.conftest import SAMPLE, docs_source, shared, write_config

NEW_DOC = "# Fire drill\n\nThe fire drill assembly point is the Spree car park; the code word is Pelican.\n"
QUERIES = ["how does the on-call hand-off work?", "what is the meal expense limit?", "fire drill assembly point"]


async def _server(config, stop: asyncio.Event, ready: asyncio.Event, errors: list, results: dict, name: str):
    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "cli.main", "--config", str(config), "serve", "--standalone"])
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        await session.call_tool("search", {"query": "warm up"})
        ready.set()
        calls = 0
        while not stop.is_set():
            result = await session.call_tool("search", {"query": QUERIES[calls % 2], "limit": 3})
            calls += 1
            if result.is_error or not result.structured_content["hits"]:
                errors.append((name, result.content[0].text))
        started = time.monotonic()
        while time.monotonic() - started < 30:
            found = await session.call_tool("search", {"query": QUERIES[2], "limit": 1})
            if "Pelican" in found.structured_content["hits"][0]["text"]:
                break
            await asyncio.sleep(0.2)
        results[name] = {q: [h["id"] for h in (await session.call_tool("search", {"query": q, "limit": 5}))
                             .structured_content["hits"]] for q in QUERIES}
        results[name]["calls"] = calls
        results[name]["seen_after"] = time.monotonic() - started


@pytest.mark.slow
def test_three_servers_and_an_ingest_at_once(tmp_path, embedder):
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE, docs)
    config = write_config(tmp_path, docs_source("handbook", docs) + docs_source(
        "tools", shared("docs", "18f-handbook"), include=["pages/tools/**"]))
    ingest(load_config(config), embedder=embedder)

    async def scenario():
        stop, errors, results = asyncio.Event(), [], {}
        readies = [asyncio.Event() for _ in range(3)]
        servers = [asyncio.create_task(_server(config, stop, readies[i], errors, results, f"s{i}")) for i in range(3)]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), timeout=300)
        (docs / "fire-drill.md").write_text(NEW_DOC)
        (docs / "people" / "expenses.md").write_text((docs / "people" / "expenses.md").read_text() + "\nUpdated.\n")
        cmd = [sys.executable, "-m", "cli.main", "--config", str(config), "ingest"]
        writer = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        lock = tmp_path / "store" / "ingest.lock"
        for _ in range(600):  # the second ingest starts once the first holds the writer lock
            if lock.exists() and lock.read_text().strip() == str(writer.pid):
                break
            await asyncio.sleep(0.1)
        second = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        second_out = (await second.communicate())[0].decode()
        writer_out = (await writer.communicate())[0].decode()
        stop.set()
        await asyncio.wait_for(asyncio.gather(*servers), timeout=300)
        return errors, results, writer.returncode, writer_out, second.returncode, second_out

    errors, results, code, out, second_code, second_out = asyncio.run(scenario())
    assert code == 0, out
    assert second_code == 2 and "another corpus ingest" in second_out, second_out
    assert errors == []
    assert set(results) == {"s0", "s1", "s2"} and all(r["calls"] > 0 for r in results.values())
    fresh = Searcher(load_config(config), embedder)
    expected = {q: [h.id for h in fresh.search(q, limit=5)] for q in QUERIES}
    assert "Pelican" in fresh.search(QUERIES[2], limit=1)[0].text
    for name, seen in results.items():
        assert {q: seen[q] for q in QUERIES} == expected, name
