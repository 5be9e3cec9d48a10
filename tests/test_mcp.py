"""The MCP server driven by real clients: the SDK's own over stdio and HTTP, and the MCP Inspector CLI."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from connectors import load_config
from ingest.pipeline import ingest
from tests.conftest import SAMPLE, docs_source, free_port, wait_for_port, write_config

pytestmark = pytest.mark.slow  # stdio and HTTP servers as subprocesses

TOKEN_ENG = "eng-token-0123456789abcdef"
TOKEN_HR = "hr-token-0123456789abcdef"


@pytest.fixture(scope="module")
def served(tmp_path_factory, embedder) -> Path:
    folder = tmp_path_factory.mktemp("mcp")
    (folder / "hr").mkdir()
    (folder / "hr" / "salaries.md").write_text("# Salary bands\n\nEngineering salary band L3 is 70-85k EUR.\n")
    config = write_config(folder, docs_source("handbook", SAMPLE) + docs_source("hr", folder / "hr", access=["hr"]),
                          extra="""
                          [server]
                          idle = 30
                          [[server.tokens]]
                          name = "eng"
                          env = "CORPUS_TEST_TOKEN_ENG"
                          groups = ["eng"]
                          [[server.tokens]]
                          name = "hr"
                          env = "CORPUS_TEST_TOKEN_HR"
                          groups = ["hr"]
                          """)
    ingest(load_config(config), embedder=embedder)
    return config


def _stdio(config: Path) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "cli.main", "--config", str(config), "serve"],
                                 cwd=str(config.parent))


async def _stdio_session(config: Path, body):
    async with stdio_client(_stdio(config)) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        return await body(session)


def test_stdio_tools_search_fetch_and_sources(served):
    async def body(session: ClientSession):
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert set(tools) == {"search", "fetch", "list_sources", "check_questions", "report_gap"}
        assert all(t.annotations.read_only_hint for name, t in tools.items() if name != "report_gap")
        assert "query" in tools["search"].input_schema["required"]
        assert "hits" in tools["search"].output_schema["properties"]

        found = await session.call_tool("search", {"query": "how much is the pension match?", "limit": 3})
        assert not found.is_error
        hits = found.structured_content["hits"]
        assert hits[0]["citation"].endswith("benefits-summary.pdf#page=2")
        assert "cite: handbook/people/benefits-summary.pdf, page 2" in found.content[0].text
        assert len(found.content) == 1 and not found.content[0].text.startswith("{")  # not the JSON again

        filtered = await session.call_tool("search", {"query": "policy", "after": "2026-01-01", "limit": 20})
        assert all(h["date"] >= "2026-01-01" for h in filtered.structured_content["hits"])
        none = await session.call_tool("search", {"query": "pension", "after": "2100-01-01"})
        assert none.structured_content["hits"] == [] and "no matches" in none.content[0].text

        whole = await session.call_tool("fetch", {"id": hits[0]["doc_id"]})
        assert not whole.is_error and "pension" in whole.structured_content["text"].lower()
        assert whole.structured_content["pages"] >= 1

        sources = (await session.call_tool("list_sources", {})).structured_content["sources"]
        assert {s["name"]: s["documents"] for s in sources} == {"handbook": 11, "hr": 1}

        big = await session.call_tool("search", {"query": "what should a new engineer know", "limit": 20})
        assert len(big.content[0].text) + len(json.dumps(big.structured_content)) < 60_000  # ≪ 25k tokens
        return True

    assert asyncio.run(_stdio_session(served, body))


def test_stdio_bad_calls_are_tool_errors_that_say_what_to_do(served):
    async def body(session: ClientSession):
        unknown = await session.call_tool("fetch", {"id": "dnothing:3"})
        assert unknown.is_error and "use an id returned by search" in unknown.content[0].text
        empty = await session.call_tool("search", {"query": "  "})
        assert empty.is_error and "query is empty" in empty.content[0].text
        bad_date = await session.call_tool("search", {"query": "leave", "after": "last week"})
        assert bad_date.is_error and "YYYY" not in bad_date.content[0].text and "2026-01-31" in bad_date.content[0].text
        too_many = await session.call_tool("search", {"query": "leave", "limit": 500})
        assert too_many.is_error
        doc_id = (await session.call_tool("search", {"query": "pension", "limit": 1})).structured_content["hits"][0][
            "doc_id"]
        not_a_meeting = await session.call_tool("fetch", {"id": doc_id, "start": "01:00"})
        assert not_a_meeting.is_error and "is it a meeting?" in not_a_meeting.content[0].text
        bad_time = await session.call_tool("fetch", {"id": doc_id, "start": "soon"})
        assert bad_time.is_error and "12:34" in bad_time.content[0].text
        return True

    assert asyncio.run(_stdio_session(served, body))


def test_stdio_onboarding_check_tool_and_prompt(served):
    async def body(session: ClientSession):
        questions = ["Which team owns billing-api?", "What is the salary band for an L3 engineer?"]
        result = await session.call_tool("check_questions", {"questions": questions})
        assert not result.is_error
        outcomes = result.structured_content["outcomes"]
        assert [o["question"]["text"] for o in outcomes] == questions
        assert outcomes[0]["verdict"] == "answered"
        assert outcomes[0]["evidence"][0]["citation"].endswith("ledgerline-architecture.docx")
        assert "offline verdict: answered" in result.content[0].text and "cite: " in result.content[0].text
        assert (await session.call_tool("check_questions", {"questions": []})).is_error

        prompts = {p.name: p for p in (await session.list_prompts()).prompts}
        prompt = await session.get_prompt("onboarding_check", {"questions": "- Who approves expenses?"})
        assert "onboarding_check" in prompts
        text = prompt.messages[0].content.text
        assert "check_questions" in text and "never answer from your own knowledge" in text
        assert text.endswith("- Who approves expenses?")
        return True

    assert asyncio.run(_stdio_session(served, body))


@pytest.fixture(scope="module")
def http_server(served):
    port = free_port()
    env = {**os.environ, "CORPUS_TEST_TOKEN_ENG": TOKEN_ENG, "CORPUS_TEST_TOKEN_HR": TOKEN_HR}
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "--config", str(served), "serve", "--http",
                             "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wait_for_port(port)
    yield f"http://127.0.0.1:{port}/mcp"
    proc.terminate()
    proc.wait(timeout=30)
    assert list((served.parent / "store").glob(f"reader-{proc.pid}-*")) == []  # SIGTERM removes its private copy


async def _http_sources(url: str, token: str, query: str) -> tuple[set[str], set[str]]:
    """Sources seen by a search and by an onboarding check of the same query, with this token."""
    async with create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http, \
            streamable_http_client(url, http_client=http) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        result = await session.call_tool("search", {"query": query, "limit": 20})
        checked = await session.call_tool("check_questions", {"questions": [query]})
        assert not result.is_error and not checked.is_error
        return ({h["source"] for h in result.structured_content["hits"]},
                {e["source"] for e in checked.structured_content["outcomes"][0]["evidence"]})


def test_http_requires_a_token_and_applies_its_access_groups(http_server):
    searched, checked = asyncio.run(_http_sources(http_server, TOKEN_HR, "engineering salary band"))
    assert "hr" in searched and "hr" in checked
    searched, checked = asyncio.run(_http_sources(http_server, TOKEN_ENG, "engineering salary band"))
    assert "hr" not in searched and "hr" not in checked

    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    assert httpx2.post(http_server, json=initialize, headers=headers).status_code == 401
    wrong = {**headers, "Authorization": "Bearer not-the-token-at-all"}
    assert httpx2.post(http_server, json=initialize, headers=wrong).status_code == 401
    evil = {**headers, "Authorization": f"Bearer {TOKEN_ENG}", "Origin": "https://evil.example"}
    assert httpx2.post(http_server, json=initialize, headers=evil).status_code == 403


def test_http_beyond_loopback_without_tokens_is_refused(tmp_path):
    (tmp_path / "docs").mkdir()
    config = write_config(tmp_path, docs_source("d", tmp_path / "docs"))
    run = subprocess.run([sys.executable, "-m", "cli.main", "--config", str(config), "serve", "--http",
                          "--host", "0.0.0.0"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "refusing to listen on 0.0.0.0 without bearer tokens" in run.stderr


@pytest.mark.skipif(shutil.which("npx") is None, reason="npx (Node.js) is not installed: the Inspector test needs it")
def test_the_mcp_inspector_cli_lists_and_calls_the_tools(served):
    base = ["npx", "-y", "@modelcontextprotocol/inspector@0.15.0", "--cli", "-e", f"CORPUS_CONFIG={served}",
            sys.executable, "-m", "cli.main", "serve"]
    listed = subprocess.run([*base, "--method", "tools/list"], capture_output=True, text=True, timeout=600)
    assert listed.returncode == 0, listed.stderr
    assert {t["name"] for t in json.loads(listed.stdout)["tools"]} == {"search", "fetch", "list_sources",
                                                                       "check_questions", "report_gap"}
    called = subprocess.run([*base, "--method", "tools/call", "--tool-name", "search", "--tool-arg",
                             "query=which team owns billing-api", "--tool-arg", "limit=2"],
                            capture_output=True, text=True, timeout=600)
    assert called.returncode == 0, called.stderr
    result = json.loads(called.stdout)
    assert not result["isError"] and "billing-api" in result["structuredContent"]["hits"][0]["text"]
