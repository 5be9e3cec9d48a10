"""`corpus dream` on a fixture corpus with a planted duplicate, contradiction and superseded fact."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cli.main import main
from connectors import load_config
from ingest.dream import _annotating, dream, undo
from ingest.pipeline import ingest
from ingest.progress import Progress
from server.search import Searcher
from store import annotations
from store.annotations import Annotation
from tests.anthropic_stub import KEY, MessagesStub
from tests.conftest import docs_source, shared, write_config
from tests.test_slack_connector import slack_source

FIXTURE = Path(__file__).parent / "fixtures" / "dream"


@pytest.fixture
def corpus(tmp_path, embedder):
    shutil.copytree(FIXTURE, tmp_path / "docs")
    config = load_config(write_config(tmp_path, docs_source("wiki", tmp_path / "docs")))
    ingest(config, embedder=embedder, progress=Progress(interval=999))
    return config


def found(result) -> set[tuple[str, str, str]]:
    """(relation, file of a, file of b) with a the older passage for superseded findings."""
    return {(f.relation, Path(f.a.citation.split("#")[0]).name, Path(f.b.citation.split("#")[0]).name)
            if f.relation == "superseded" else
            (f.relation, *sorted(Path(p.citation.split("#")[0]).name for p in (f.a, f.b)))
            for f in result.findings}


def top(config, embedder, query: str, limit: int = 5):
    searcher = Searcher(config, embedder)
    try:
        return searcher.search(query, limit=limit)
    finally:
        searcher.replica.close()


def test_offline_dream_finds_the_planted_three_and_nothing_else(corpus, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    result = dream(corpus)
    assert result.mode.startswith("offline (no API key")
    assert found(result) == {
        ("duplicate", "security-a.md", "security-copy.md"),
        ("conflict", "refunds-eu.md", "refunds-sales.md"),
        ("superseded", "travel-2024.md", "travel-2026.md"),
    }
    conflict = next(f for f in result.findings if f.relation == "conflict")
    assert "30 days vs 45 days" in conflict.detail or "45 days vs 30 days" in conflict.detail
    superseded = next(f for f in result.findings if f.relation == "superseded")
    assert superseded.a.date == "2024-02-01" and superseded.b.date == "2026-03-01"
    assert all(f.judged_by == "offline" for f in result.findings)


def test_annotations_show_in_search_superseded_ranks_lower_and_undo_removes_them(corpus, embedder, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    query = "daily meal allowance on business trips"
    before = [Path(h.citation).name for h in top(corpus, embedder, query)]
    assert before.index("travel-2024.md#per-diem") < before.index("travel-2026.md#per-diem")  # older ranked first
    dream(corpus)
    hits = top(corpus, embedder, query)
    names = [Path(h.citation).name for h in hits]
    assert names.index("travel-2026.md#per-diem") < names.index("travel-2024.md#per-diem")
    old = hits[names.index("travel-2024.md#per-diem")]
    assert old.notes and old.notes[0].startswith("possibly superseded by “Travel policy 2026”, 2026-03-01")
    refund = top(corpus, embedder, "refund within how many days", limit=3)
    assert any(n.startswith("conflicts with") for h in refund for n in h.notes)

    assert undo(corpus) == 6  # three findings, annotated on both sides
    again = top(corpus, embedder, query)
    assert [Path(h.citation).name for h in again] == before
    assert not any(h.notes for h in again)


def test_repeated_runs_look_only_at_what_changed(corpus, embedder, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    first = dream(corpus)
    assert first.examined_chunks == 7
    assert dream(corpus).examined_chunks == 0
    refunds = corpus.sources[0].path / "refunds-sales.md"
    refunds.write_text(refunds.read_text().replace("45 days", "30 days"))
    ingest(corpus, embedder=embedder, progress=Progress(interval=999))
    third = dream(corpus)
    assert third.examined_chunks == 1
    assert third.count("conflict") == 0  # the edit resolved it, and its old annotation left with the old text
    notes = [n for h in top(corpus, embedder, "refund within how many days") for n in h.notes]
    assert not any("conflicts with" in n for n in notes)


def test_claude_judges_pairs_and_a_malformed_reply_falls_back(corpus, monkeypatch):
    def judge(body):
        prompt = body["messages"][0]["content"]
        if "refund" in prompt:
            return "these passages disagree, I think"  # malformed: the offline rule decides this pair
        if "meal allowance" in prompt:
            newer = "A" if "$75" in prompt.split("<passage_b>")[0] else "B"
            return json.dumps({"relation": "superseded", "newer": newer, "detail": "per diem raised to $75"})
        return json.dumps({"relation": "duplicate", "newer": None, "detail": "same laptop rules"})

    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with MessagesStub(judge) as stub:
        claude = corpus.claude.model_copy(update={"base_url": stub.url})
        result = dream(corpus.model_copy(update={"claude": claude}))
    assert len(stub.requests) == result.candidate_pairs == 3
    by_relation = {f.relation: f for f in result.findings}
    assert by_relation["superseded"].judged_by == "claude"
    assert by_relation["superseded"].detail == "per diem raised to $75"
    assert Path(by_relation["superseded"].b.citation).name == "travel-2026.md#per-diem"
    assert by_relation["duplicate"].judged_by == "claude"
    assert by_relation["conflict"].judged_by == "offline"
    assert "malformed reply" in result.mode


def test_cli_writes_a_report_and_undo_says_what_it_removed(corpus, capsys, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    config_file = corpus.root / "corpus.toml"
    report = corpus.root / "report.md"
    assert main(["--config", str(config_file), "dream", "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "1 contradiction(s), 1 superseded fact(s), 1 duplicate(s)" in out
    text = report.read_text()
    assert "## Contradictions (1)" in text and "## Superseded facts (1)" in text and "## Duplicates (1)" in text
    assert "**older**: “Travel policy 2024”, 2024-02-01" in text
    assert main(["--config", str(config_file), "dream", "--undo"]) == 0
    assert "removed 6 annotation(s)" in capsys.readouterr().out
    assert main(["--config", str(config_file), "ingest", "--dream"]) == 0  # nothing changed; undo reset the runs
    assert "dream, offline (no API key" in capsys.readouterr().out
    assert "## Superseded facts (1)" in (corpus.store_path / "dream-report.md").read_text()


def test_a_second_dream_keeps_reporting_what_is_still_active(corpus, capsys, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    config_file = str(corpus.root / "corpus.toml")
    assert main(["--config", config_file, "dream"]) == 0
    first = (corpus.store_path / "dream-report.md").read_text()
    capsys.readouterr()
    assert main(["--config", config_file, "dream"]) == 0  # nothing changed: nothing new, three still active
    out = capsys.readouterr().out
    assert "examined 0 chunk(s)" in out
    assert "new: 0 contradiction(s), 0 superseded fact(s), 0 duplicate(s); 3 still active from earlier passes" in out
    report = (corpus.store_path / "dream-report.md").read_text()
    assert "## Contradictions (1)" in report and "## Superseded facts (1)" in report and "## Duplicates (1)" in report
    assert "active (search shows them): 3 finding(s), 3 of them from earlier passes" in report
    assert report.count(", found in an earlier pass") == 3 and first.count(", new in this pass") == 3
    assert "**older**: “Travel policy 2024”, 2024-02-01" in report


def test_an_offline_finding_the_rule_no_longer_makes_is_withdrawn(corpus, embedder, monkeypatch):
    """A store dreamt by an older rule (here: conflicts it made between unrelated pages) is put right."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    dream(corpus)
    first_day, refunds, laptop = (top(corpus, embedder, q, limit=1)[0]
                                  for q in ("first day buddy", "full refund", "disk encryption laptop"))

    def both_sides(a, b, judged_by: str) -> list[Annotation]:
        return [Annotation(x.id, x.doc_id, "conflicts_with", y.id, y.doc_id, y.title, y.citation, y.date,
                           "2016-06-13 vs 2016-07-11 (about “j kim”)", judged_by) for x, y in ((a, b), (b, a))]

    with _annotating(corpus) as writer, writer.manifest.db:
        annotations.add(writer.manifest.db, both_sides(first_day, refunds, "offline")
                        + both_sides(first_day, laptop, "claude"))
    result = dream(corpus)
    assert (result.withdrawn, len(result.findings), len(result.active)) == (1, 0, 4)  # Claude's stands until --full
    hits = {h.id: h for q in ("first day buddy", "full refund") for h in top(corpus, embedder, q)}
    assert [n for n in hits[first_day.id].notes if "j kim" in n] == [
        f"conflicts with “{laptop.title}”, {laptop.date} <{laptop.citation}>: 2016-06-13 vs 2016-07-11 (about “j kim”)"]
    assert not any("j kim" in n for n in hits[refunds.id].notes)


@pytest.fixture
def datavis(tmp_path, embedder):
    """Two channels of the real houstondatavis export, where message timestamps were once read as facts."""
    config = load_config(write_config(tmp_path, slack_source(
        "datavis", shared("slack", "houstondatavis"), workspace_url="https://houstondatavis.slack.com",
        channels=["datajam", "meetup-"])))
    ingest(config, embedder=embedder, progress=Progress(interval=999))
    return config


@pytest.mark.slow
def test_slack_timestamps_are_not_contradictions_offline_or_to_claude(datavis, embedder, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    offline = dream(datavis)
    assert offline.candidate_pairs > 0
    assert offline.count("conflict") == offline.count("superseded") == 0
    for query in ("houston hackathon", "J. Kim meetup link"):
        assert not any("conflicts with" in n for h in top(datavis, embedder, query) for n in h.notes)

    rule = "A date that says when something was written or said is not a fact"

    def judge(body):  # as a model that follows the prompt: a pair differing only in timestamps is "none"
        prompt = body["messages"][0]["content"]
        return json.dumps({"relation": "none" if rule in prompt else "conflict", "newer": None, "detail": "dates"})

    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with MessagesStub(judge) as stub:
        claude = datavis.claude.model_copy(update={"base_url": stub.url})
        result = dream(datavis.model_copy(update={"claude": claude}), full=True)
    assert len(stub.requests) == result.candidate_pairs > 0
    assert result.findings == [] and result.mode.startswith("Claude")
    assert all("): " in r["messages"][0]["content"] for r in stub.requests)  # the stamps were in what Claude read
