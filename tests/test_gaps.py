"""The question log and `corpus gaps`: planted themes grouped and ranked, report_gap over stdio and HTTP with its
caller, a theme resolved by a later ingest, --forget, the check report's section, Claude's names via the stub."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from cli.main import main
from connectors import load_config
from corpus.claude import Claude
from corpus.config import ClaudeSettings
from ingest.pipeline import ingest
from ingest.progress import Progress
from server.gaps import find_gaps, parse_since, unanswered
from server.search import Searcher
from store.questionlog import QuestionLog
from tests.anthropic_stub import KEY, MessagesStub
from tests.conftest import docs_source, free_port, wait_for_port, write_config

TOKEN = "eng-token-0123456789abcdef"

ONCALL = """# On-call

## Stipend

The weekly on-call stipend for engineers is 300 EUR per week, paid with the monthly salary.

## Escalation

Escalate to the incident commander after 30 minutes without progress on a sev-1 page.
"""

EXPENSES = """# Expenses

Submit receipts in Pleo within 30 days. Meals on business trips are covered up to 40 EUR a day.
"""

MENTORING = """# Mentoring programme and onboarding buddies

## How the mentoring programme works

Will you get a mentor when you join? Yes: every new hire gets a mentor when they join, in their first week.
Mentors are matched with new hires by the People team, from outside their own team. Meet your mentor every two
weeks for the first six months. To become a mentor for new engineers, sign up for the mentorship program in
#mentoring.

## Onboarding buddy

Your onboarding buddy is named in your welcome email. The buddy system covers your first weeks: an onboarding
buddy is expected to answer everyday questions and show you around.
"""

THEMES = {  # planted questions, and how many distinct people asked each theme
    "printing": (5, [
        "How do I print from my laptop?", "Where is the nearest printer on the 2nd floor?", "printer driver for mac",
        "Which printer can print in colour?", "how to scan a document to email",
        "Printing keeps failing with a queue error, who fixes printers?", "Can I print double-sided?",
        "set up the office printer on Linux", "Is there a printer that does A3 posters?",
        "printer out of toner, who refills it"]),
    "gym": (4, [
        "Do we get a gym membership?", "Is there a fitness subsidy?", "Urban Sports Club membership discount",
        "Does the company pay for my gym?", "wellness allowance for yoga classes",
        "Can I expense a fitness studio membership?", "Is there a sports benefit like Urban Sports Club or EGYM?",
        "gym reimbursement", "Do we have a company running group or fitness benefit?",
        "how much is the monthly wellness budget for sports"]),
    "mentoring": (3, [
        "Will I get a mentor when I join?", "How does the mentoring programme work?", "Who is my onboarding buddy?",
        "Can I become a mentor for new engineers?", "mentorship program sign up",
        "How are mentors matched with new hires?", "How often should I meet my mentor?",
        "Is there a buddy system for the first weeks?", "find a mentor outside my team",
        "What is expected from an onboarding buddy?"]),
    "visa": (2, [
        "Does the company sponsor work visas?", "Do you help with relocation to Berlin?",
        "Blue Card application support", "Who pays for my visa appointment?",
        "relocation package for international hires", "Can my family come with me on a work permit?",
        "How long does the visa process take before I can start?", "Do we cover moving costs from abroad?",
        "residence permit renewal help", "Is there a relocation agency we work with?"]),
}
NOISE = ["What is the capital of Australia?", "best pizza near the office", "asdf", "quarterly revenue for Q3 2019",
         "How do I cook rice?", "Who won the 2018 world cup?"]


def _store(folder: Path, embedder, extra: str = "") -> Path:
    (folder / "docs").mkdir(parents=True)
    (folder / "docs" / "oncall.md").write_text(ONCALL)
    (folder / "docs" / "expenses.md").write_text(EXPENSES)
    config = write_config(folder, docs_source("wiki", folder / "docs"), extra=extra)
    ingest(load_config(config), embedder=embedder, progress=Progress(interval=999))
    return config


def _plant(log: QuestionLog) -> dict[str, str]:
    """Every planted question logged as unanswered, spread over the last days; question -> its theme."""
    truth = {}
    now = datetime.now(UTC) - timedelta(hours=1)
    for theme, (askers, questions) in THEMES.items():
        for n, question in enumerate(questions):
            log.record(question, f"{theme}-asker-{n % askers}", verdict="unlikely", top_relevance=0.01,
                       time=now - timedelta(hours=n * 7))
            truth[question] = theme
    for n, question in enumerate(NOISE):
        log.record(question, f"someone-{n}", verdict="unlikely", top_relevance=0.0, time=now - timedelta(days=n))
        truth[question] = "noise"
    log.flush()
    return truth


def _offline() -> Claude:
    return Claude(ClaudeSettings(), environ={})


def test_the_log_links_fetches_keeps_callers_and_expires_old_entries(tmp_path):
    log = QuestionLog(tmp_path, retention_days=30)
    long_ago = datetime.now(UTC) - timedelta(days=40)
    log.record("too old to keep", "local", verdict="unlikely", top_relevance=0.0, time=long_ago)
    log.record("where is the stipend?", "eng", verdict="likely", top_relevance=0.6, session="s1",
               hits=["dabc:1", "dabc:2", "dxyz:4"])
    log.record("who is on call?", "eng", verdict="possible", top_relevance=0.2, session="s2", hits=["dqq:1"])
    log.fetched("s1", "dxyz")  # the whole document of one hit
    log.fetched("s1", "dnot-a-hit:3")
    log.fetched("s2", "dabc:1")  # another session's hit: not this search's
    log.record("nobody wrote this down", "hr", kind="gap", missing="the parental leave policy")
    entries = log.entries()
    assert [e.query for e in entries] == ["where is the stipend?", "who is on call?", "nobody wrote this down"]
    first, second, gap = entries
    assert first.fetched == ("dxyz",) and first.caller == "eng" and first.time.tzinfo is not None
    assert second.fetched == () and unanswered(second) and not unanswered(first)
    assert gap.kind == "gap" and gap.missing == "the parental leave policy" and gap.verdict is None
    assert oct(os.stat(log.path).st_mode & 0o777) == "0o600"
    assert log.entries(since=datetime.now(UTC) + timedelta(minutes=1)) == []

    later = QuestionLog(tmp_path, retention_days=30)  # a new writer deletes what is past the retention
    later.record("a new one", "local")
    later.flush()
    import sqlite3

    with sqlite3.connect(log.path) as db:
        assert db.execute("SELECT count(*) FROM asked WHERE query = 'too old to keep'").fetchone()[0] == 0


def test_since_takes_periods_and_dates():
    now = datetime(2026, 12, 3, tzinfo=UTC)
    assert parse_since("30d", now) == now - timedelta(days=30)
    assert parse_since("12h", now) == now - timedelta(hours=12)
    assert parse_since("2026-11-01", now) == datetime(2026, 11, 1, tzinfo=UTC)
    with pytest.raises(Exception, match="30d"):
        parse_since("last month", now)


@pytest.mark.slow
def test_planted_themes_are_grouped_ranked_by_askers_and_one_is_resolved_by_an_ingest(tmp_path, embedder):
    config_path = _store(tmp_path, embedder)
    config = load_config(config_path)
    searcher = Searcher(config, embedder)
    truth = _plant(searcher.asked.log)
    assert len(truth) >= 40

    gaps = find_gaps(searcher, searcher.asked.log, parse_since("30d"), _offline())
    assert gaps.entries == len(truth) and gaps.unanswered == len(truth)
    sizes = [len(t.questions) for t in gaps.themes]
    majority = [Counter(truth[q] for q in t.questions).most_common(1)[0] for t in gaps.themes]
    purity = sum(count for _, count in majority) / sum(sizes)
    assert purity >= 0.8, [t.questions for t in gaps.themes]
    assert [label for label, _ in majority[:4]] == ["printing", "gym", "mentoring", "visa"]  # most askers first
    assert [t.askers for t in gaps.themes[:4]] == [5, 4, 3, 2]
    assert sum(sizes[:4]) >= 36  # nearly every planted question sits in its theme
    assert not any(t.resolved for t in gaps.themes)
    assert "print" in gaps.themes[0].name and gaps.themes[0].owners == ["wiki"]

    (tmp_path / "docs" / "mentoring.md").write_text(MENTORING)
    ingest(config, embedder=embedder, progress=Progress(interval=999))
    after = find_gaps(Searcher(config, embedder), searcher.asked.log, parse_since("30d"), _offline())
    resolved = {Counter(truth[q] for q in t.questions).most_common(1)[0][0]: t.resolved for t in after.themes[:4]}
    assert resolved == {"printing": False, "gym": False, "mentoring": True, "visa": False}
    assert after.themes[-1].resolved  # resolved themes come last

    assert main(["--config", str(config_path), "gaps", "--json", "--report", str(tmp_path / "gaps.html")]) == 0
    assert "mentor" in (tmp_path / "gaps.html").read_text()


def test_themes_asked_by_as_many_people_rank_by_how_recently(tmp_path, embedder):
    config = load_config(_store(tmp_path, embedder))
    searcher = Searcher(config, embedder)
    now = datetime.now(UTC)
    for theme, days_ago in (("gym", 5), ("visa", 1)):
        for n, question in enumerate(THEMES[theme][1][:6]):
            searcher.asked.log.record(question, f"{theme}-{n % 2}", verdict="unlikely", top_relevance=0.0,
                                      time=now - timedelta(days=days_ago, minutes=n))
    gaps = find_gaps(searcher, searcher.asked.log, parse_since("30d"), _offline())
    assert [t.askers for t in gaps.themes] == [2, 2]
    assert "visa" in gaps.themes[0].name and gaps.themes[0].last_asked > gaps.themes[1].last_asked


def test_claude_names_themes_and_a_malformed_reply_keeps_the_offline_names(tmp_path, embedder):
    config = load_config(_store(tmp_path, embedder))
    searcher = Searcher(config, embedder)
    _plant(searcher.asked.log)

    def names(body: dict) -> str:
        prompt = body["messages"][0]["content"]
        groups = prompt.count("Group ")
        return json.dumps({"themes": [{"group": n, "name": f"Theme {n}", "description": f"what group {n} lacks",
                                       "owners": ["wiki", "IT"]} for n in range(1, groups + 1)]})

    with MessagesStub(names) as stub:
        claude = Claude(ClaudeSettings(base_url=stub.url), environ={"ANTHROPIC_API_KEY": KEY})
        gaps = find_gaps(searcher, searcher.asked.log, parse_since("30d"), claude)
    assert [t.name for t in gaps.themes[:2]] == ["Theme 1", "Theme 2"]
    assert gaps.themes[0].description == "what group 1 lacks" and gaps.themes[0].owners == ["wiki", "IT"]
    assert "printer driver for mac" in stub.requests[0]["messages"][0]["content"]
    assert len(stub.requests) == 1 and gaps.mode.startswith("Claude")

    with MessagesStub(lambda body: "Here are some names: printing, gyms") as stub:
        claude = Claude(ClaudeSettings(base_url=stub.url), environ={"ANTHROPIC_API_KEY": KEY})
        gaps = find_gaps(searcher, searcher.asked.log, parse_since("30d"), claude)
    assert "print" in gaps.themes[0].name and "malformed reply" in gaps.mode


def test_searches_and_checks_are_logged_and_the_check_report_lists_what_was_not_answered(tmp_path, embedder):
    config = _store(tmp_path, embedder)
    assert main(["--config", str(config), "search", "how much is the on-call stipend?", "--json"]) == 0
    for question in ("Is there a bike shed at the office?", "Where do I park my bike?"):
        assert main(["--config", str(config), "search", question]) == 0
    questions = tmp_path / "q.md"
    questions.write_text("# Onboarding\n- How much is the on-call stipend?\n- Who approves parental leave?\n")
    report = tmp_path / "report.md"
    assert main(["--config", str(config), "check", str(questions), "--report", str(report)]) == 0

    entries = QuestionLog(tmp_path / "store").entries()
    assert [e.query for e in entries] == ["how much is the on-call stipend?", "Is there a bike shed at the office?",
                                          "Where do I park my bike?", "How much is the on-call stipend?",
                                          "Who approves parental leave?"]
    assert {e.caller for e in entries} == {"local"}
    assert entries[0].verdict in ("likely", "possible", "unlikely") and entries[0].top_relevance is not None
    section = report.read_text().split("## Asked but not answered")[1]
    assert "bike" in section and "parental leave" not in section  # the check's own questions are above it

    page = tmp_path / "report.html"
    assert main(["--config", str(config), "check", str(questions), "--report", str(page)]) == 0
    assert "bike" in page.read_text().split("<h2>Asked but not answered</h2>")[1]


def test_the_log_off_records_nothing(tmp_path, embedder):
    config = _store(tmp_path, embedder, extra="[feedback]\nlog = false\n")
    assert main(["--config", str(config), "search", "stipend"]) == 0
    assert not (tmp_path / "store" / "questions.sqlite").exists()


async def _stdio(config: Path, body):
    params = StdioServerParameters(command=sys.executable, args=["-m", "cli.main", "--config", str(config), "serve"],
                                   cwd=str(config.parent))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        started = await session.initialize()
        return await body(session, started.instructions)


async def _http(url: str, body):
    async with create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"}) as http, \
            streamable_http_client(url, http_client=http) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        return await body(session)


def _logged(store: Path, count: int) -> list:
    """The log once the servers' writer threads have committed ``count`` entries (they write in the background)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        entries = QuestionLog(store).entries()
        if len(entries) >= count:
            return entries
        time.sleep(0.1)
    return QuestionLog(store).entries()


@pytest.mark.slow  # stdio and HTTP server subprocesses
def test_report_gap_over_stdio_and_http_records_the_caller_and_forget_leaves_nothing(tmp_path, embedder):
    config = _store(tmp_path, embedder, extra='[server]\nidle = 20\n[[server.tokens]]\nname = "eng"\n'
                                              'env = "CORPUS_TEST_GAPS_TOKEN"\ngroups = ["eng"]\n')
    secret_query = "zanzibar-quokka ferry timetable"

    async def over_stdio(session: ClientSession, instructions: str):
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert tools["report_gap"].annotations.read_only_hint is False
        assert tools["report_gap"].annotations.destructive_hint is False
        assert "call `report_gap` once" in instructions
        found = await session.call_tool("search", {"query": "weekly on-call stipend", "limit": 2})
        await session.call_tool("fetch", {"id": found.structured_content["hits"][0]["doc_id"]})
        await session.call_tool("search", {"query": secret_query})
        reply = await session.call_tool("report_gap", {"question": "Who approves parental leave?",
                                                       "missing": "the parental leave policy"})
        assert not reply.is_error and reply.structured_content["recorded"] is True
        assert (await session.call_tool("report_gap", {"question": " ", "missing": "x"})).is_error

    asyncio.run(_stdio(config, over_stdio))

    port = free_port()
    env = {**os.environ, "CORPUS_TEST_GAPS_TOKEN": TOKEN}
    server = subprocess.Popen([sys.executable, "-m", "cli.main", "--config", str(config), "serve", "--http", "--port",
                               str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)

        async def over_http(session: ClientSession):
            reply = await session.call_tool("report_gap", {"question": "Is there a company softball team?",
                                                           "missing": "sports clubs"})
            assert not reply.is_error and reply.structured_content["recorded"] is True

        asyncio.run(_http(f"http://127.0.0.1:{port}/mcp", over_http))
        entries = _logged(tmp_path / "store", 4)
    finally:
        server.terminate()
        server.wait(timeout=30)

    by_query = {e.query: e for e in entries}
    stipend = by_query["weekly on-call stipend"]
    assert stipend.caller == "local" and stipend.fetched and stipend.session
    local_gap, http_gap = by_query["Who approves parental leave?"], by_query["Is there a company softball team?"]
    assert (local_gap.kind, local_gap.caller, local_gap.missing) == ("gap", "local", "the parental leave policy")
    assert (http_gap.kind, http_gap.caller) == ("gap", "eng")
    assert TOKEN not in json.dumps([e.__dict__ for e in entries], default=str)

    store = tmp_path / "store"
    assert _holding(store, secret_query), "the query must be in the store folder before it is forgotten"
    assert main(["--config", str(config), "gaps", "--forget"]) == 0
    assert _holding(store, secret_query) == [] and _holding(store, "parental leave") == []
    assert QuestionLog(store).entries() == []


def _holding(folder: Path, text: str) -> list[Path]:
    """Files under ``folder`` whose bytes hold ``text`` (grep -r, binary files too)."""
    needle = text.encode()
    return [p for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]
