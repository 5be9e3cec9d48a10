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
from server.search import Searcher
from store.filters import Filters
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


FILLER = ["Laptops are replaced every four years; ask the service desk for a loaner while yours is repaired.",
          "The office opens at eight; visitors sign in at reception and wear a badge at all times.",
          "Expense reports are filed within thirty days of a trip, with receipts attached as PDF files.",
          "Code review needs one approval; the author merges once the checks pass on the main branch.",
          "Holidays follow the national calendar; the office closes between Christmas and New Year.",
          "Travel is booked through the agency portal; economy class for flights under six hours.",
          "New starters get a buddy for their first month and meet their manager every week.",
          "The wiki is the place for runbooks; every service lists its owner and its dashboards."]


def _searcher(folder: Path, with_hr: bool, embedder):
    (folder / "wiki").mkdir(parents=True)
    (folder / "wiki" / "oncall.md").write_text(PUBLIC)
    for n, topic in enumerate(FILLER):  # enough pages that a word's rarity means something
        (folder / "wiki" / f"page-{n}.md").write_text(f"# Page {n}\n\n{topic}\n")
    sources = docs_source("wiki", folder / "wiki")
    if with_hr:
        (folder / "hr").mkdir()
        (folder / "hr" / "stipend-2026.md").write_text(HR)
        sources += docs_source("hr", folder / "hr", access=["hr"])
    config = load_config(write_config(folder, sources))
    ingest(config, embedder=embedder, progress=Progress(interval=999))
    return Searcher(config, embedder)


def _seen(found) -> list:
    """Everything a result says in figures: the verdict and its signals, and each hit's."""
    return [found.answer_in_corpus, found.closest_similarity, found.words_held, found.unmatched_names,
            [(h.id, h.text, round(h.score, 6), h.similarity, h.coverage, h.relevance, h.match) for h in found.hits]]


def test_a_callers_figures_are_those_of_a_corpus_without_what_it_may_not_read(tmp_path, embedder):
    """BM25's and the verdict's word statistics (how many chunks hold a word, how long chunks are) once counted
    hidden chunks too: an eng caller's coverage for "450" (a word only the hr source holds) differed from that for
    "451" (held nowhere), so the figures told whether a hidden document says 450."""
    shared_store, public_only = _searcher(tmp_path / "both", True, embedder), _searcher(tmp_path / "wiki", False,
                                                                                        embedder)
    try:
        for query in ("on-call stipend 450 EUR", "on-call stipend 451 EUR", "Rates reviewed by HR",
                      "escalate to the incident commander"):
            for mode in ("hybrid", "keyword", "dense"):
                eng = shared_store.find(query, limit=5, filters=Filters(groups=("eng",)), mode=mode)
                alone = public_only.find(query, limit=5, mode=mode)
                assert _seen(eng) == _seen(alone), (query, mode)
            # a caller who may read every chunk sees the figures of a local search
            hr = shared_store.find(query, limit=5, filters=Filters(groups=("hr",)))
            assert _seen(hr) == _seen(shared_store.find(query, limit=5)), query
    finally:
        shared_store.replica.close()
        public_only.replica.close()
