"""Access groups hold on every surface over HTTP: hits, dream notes, duplicates, sources, fetch, check, errors.

An `eng` token must learn nothing of the `hr` source: not a title, a path, a value or a count.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from connectors import load_config
from ingest.dream import dream
from ingest.pipeline import ingest
from ingest.progress import Progress
from tests.conftest import docs_source, free_port, wait_for_port, write_config
from tests.tool_tour import every_tool

pytestmark = pytest.mark.slow  # an HTTP server subprocess

TOKENS = {"eng": "eng-token-0123456789abcdef", "hr": "hr-token-0123456789abcdef"}
# What only the hr source says: none of it may reach the eng token.
HR_SECRETS = ("HR only", "450 EUR", "stipend-2026", "/hr/", "Rates reviewed by HR")

PUBLIC = """\
---
title: On-call handbook
date: 2024-02-01
---
# On-call

## Stipend

The weekly on-call stipend for engineers is 300 EUR per week. It is paid with the monthly salary.
Hand-offs happen every Monday at 10:00 in the #oncall channel.

## Escalation

Escalate to the incident commander after 30 minutes without progress on a sev-1 page.
"""

HR = """\
---
title: On-call stipend (HR only, Rates reviewed by HR)
date: 2026-03-01
---
# On-call

## Stipend

As of March 2026 the weekly on-call stipend for engineers is now 450 EUR per week. It is paid with the monthly salary.
Hand-offs happen every Monday at 10:00 in the #oncall channel.

## Escalation

Escalate to the incident commander after 30 minutes without progress on a sev-1 page.
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory, embedder):
    folder = tmp_path_factory.mktemp("access")
    (folder / "wiki").mkdir()
    (folder / "hr").mkdir()
    (folder / "wiki" / "oncall.md").write_text(PUBLIC)
    (folder / "hr" / "stipend-2026.md").write_text(HR)
    (folder / "hr" / "broken.pdf").write_bytes(b"%PDF-1.4 not really")  # a failed item of the hr source
    config_path = write_config(
        folder, docs_source("wiki", folder / "wiki") + docs_source("hr", folder / "hr", access=["hr"]),
        extra="".join(f'[[server.tokens]]\nname = "{n}"\nenv = "CORPUS_TEST_TOKEN_{n.upper()}"\ngroups = ["{n}"]\n'
                      for n in TOKENS))
    config = load_config(config_path)
    ingest(config, embedder=embedder, progress=Progress(interval=999))
    os.environ.pop("ANTHROPIC_API_KEY", None)
    findings = dream(config).findings
    assert any({Path(f.a.citation).parent.name, Path(f.b.citation.split("#")[0]).parent.name} == {"wiki", "hr"}
               for f in findings), "the fixture must give dream a finding across the two sources"
    port = free_port()
    env = {**os.environ, **{f"CORPUS_TEST_TOKEN_{n.upper()}": v for n, v in TOKENS.items()}}
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "--config", str(config_path), "serve", "--http",
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    yield f"http://127.0.0.1:{port}/mcp"
    proc.terminate()
    proc.wait(timeout=30)


async def _everything(url: str, token: str) -> dict[str, str]:
    """Every tool's answer to this token, as the text and JSON a session would read."""
    async with create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http, \
            streamable_http_client(url, http_client=http) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        return await every_tool(session)


def test_a_token_learns_nothing_of_chunks_it_may_not_read(server):
    hr = asyncio.run(_everything(server, TOKENS["hr"]))
    assert "450 EUR" in hr["search"] and "hr (docs)" in hr["sources"]  # the hr token does see them
    hr_doc = next(i for i in hr["hr ids"].split() if ":" not in i)  # a document id

    eng = asyncio.run(_everything(server, TOKENS["eng"]))
    assert "300 EUR" in eng["search"]  # the public passage is found
    for label, text in eng.items():
        leaked = [s for s in HR_SECRETS if s in text]
        assert not leaked, f"{label} shows the eng token {leaked}: {text[:500]}"
    assert '"name": "hr"' not in eng["sources"] and "hr (docs)" not in eng["sources"]

    async def fetch_hr_document() -> tuple[str, str]:
        async with create_mcp_http_client(headers={"Authorization": f"Bearer {TOKENS['eng']}"}) as http, \
                streamable_http_client(server, http_client=http) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            hidden = await session.call_tool("fetch", {"id": hr_doc})
            missing = await session.call_tool("fetch", {"id": "d0000000000000000"})
            return hidden.content[0].text, missing.content[0].text

    hidden, missing = asyncio.run(fetch_hr_document())
    # the error for a chunk the token may not read is the error for one that does not exist
    assert hidden.replace(hr_doc, "ID") == missing.replace("d0000000000000000", "ID")
