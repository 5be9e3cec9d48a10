"""Output for programs and for narrow terminals: every `--json` output has the shape docs/json.md documents
(named fields, ISO 8601 times, no positional arrays), a reader that leaves early ends it quietly, and at 80
columns no source name or citation is cut."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from cli.main import main
from connectors import load_config
from ingest.pipeline import ingest
from ingest.progress import Progress
from server import evaluate
from tests.conftest import docs_source, write_config

FIXTURES = Path(__file__).parent / "fixtures"
LONG_NAME = "company-policies-and-procedures"  # 31 characters: cut to "company-pol…" before
HIT_KEYS = {"id", "doc_id", "title", "kind", "source", "date", "text", "citation", "citation_label", "score",
            "section", "page", "people", "duplicates", "notes", "date_source", "relevance", "match", "similarity",
            "coverage", "more"}
MORE_KEYS = {"id", "text", "citation", "citation_label", "section", "page", "people", "notes"}
PASSAGE_KEYS = {"chunk_id", "doc_id", "title", "text", "citation", "updated", "date"}


@pytest.fixture(scope="module")
def store(tmp_path_factory, embedder) -> Path:
    """A store with the dream fixture (a planted duplicate, contradiction and superseded fact) under a long
    source name and a long folder path, and one file that fails (over a 1 MB text cap)."""
    root = tmp_path_factory.mktemp("shapes")
    docs = root / "policies-and-procedures-for-everyone"
    shutil.copytree(FIXTURES / "dream", docs)
    (docs / "padded.txt").write_text("Badges are issued at reception.\n" + "\n" * 1_100_000)
    path = write_config(root, docs_source(LONG_NAME, docs), extra="[ingest]\nmax_text_mb = 1\nnice = 0\n")
    ingest(load_config(path), embedder=embedder, progress=Progress(interval=999))
    return path


def _json(capsys, *argv: str) -> dict:
    assert main(list(argv)) == 0
    shape = json.loads(capsys.readouterr().out)
    assert isinstance(shape, dict)
    _no_positional_arrays_or_epochs(shape)
    return shape


def _no_positional_arrays_or_epochs(value: object, where: str = "$") -> None:
    """Arrays hold records or plain values, never arrays whose places carry meaning; no epoch-seconds times."""
    if isinstance(value, dict):
        for key, inner in value.items():
            _no_positional_arrays_or_epochs(inner, f"{where}.{key}")
    elif isinstance(value, list):
        assert not any(isinstance(item, list) for item in value), f"{where} holds bare arrays"
        for index, item in enumerate(value):
            _no_positional_arrays_or_epochs(item, f"{where}[{index}]")
    elif isinstance(value, float):
        assert not 1e9 < value < 1e10, f"{where} = {value} looks like epoch seconds; give times in ISO 8601"


def _iso(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert "T" in value and parsed.tzinfo is not None, value
    return parsed


def test_status_json_shape(store, capsys):
    shape = _json(capsys, "--config", str(store), "status", "--json")
    assert set(shape) == {"store", "size_bytes", "sources", "last_run", "failures", "unnamed_speakers"}
    assert shape["unnamed_speakers"] == []  # no recordings here; tests/test_diarize.py has them
    (source,) = shape["sources"]
    assert set(source) == {"name", "kind", "configured", "documents", "chunks", "last_ingest"}
    assert (source["name"], source["kind"], source["configured"], source["documents"]) == (LONG_NAME, "docs", True, 7)
    _iso(source["last_ingest"])
    run = shape["last_run"]
    assert set(run) == {"started", "finished", "summary"}
    assert _iso(run["started"]) <= _iso(run["finished"])
    counts = run["summary"]["sources"][LONG_NAME]
    assert counts["failed"] == 1 and counts["seconds"] > 0
    (failure,) = shape["failures"]
    assert set(failure) == {"source", "path", "reason", "since"}
    assert (failure["source"], failure["path"]) == (LONG_NAME, "padded.txt")
    _iso(failure["since"])


def test_status_failed_json_shape(store, capsys):
    shape = _json(capsys, "--config", str(store), "status", "--failed", "--json")
    assert set(shape) == {"failures"}
    assert [(f["source"], f["path"]) for f in shape["failures"]] == [(LONG_NAME, "padded.txt")]


def test_search_json_shape(store, capsys):
    shape = _json(capsys, "--config", str(store), "search", "refund period", "--limit", "3", "--json")
    assert set(shape) == {"query", "hits", "answer_in_corpus", "closest_similarity", "words_held", "unmatched_names"}
    assert shape["query"] == "refund period" and shape["answer_in_corpus"] in {"likely", "possible", "unlikely"}
    assert shape["hits"] and all(set(hit) == HIT_KEYS for hit in shape["hits"])
    assert all(set(passage) == MORE_KEYS for hit in shape["hits"] for passage in hit["more"])
    assert all(datetime.fromisoformat(hit["date"]) for hit in shape["hits"] if hit["date"])


def test_check_json_shape(store, capsys, tmp_path):
    questions = tmp_path / "questions.md"
    questions.write_text("# Policies\n\n- How many days do customers have to ask for a refund?\n")
    shape = _json(capsys, "--config", str(store), "check", str(questions), "--offline", "--json")
    assert set(shape) == {"mode", "sources", "coverage", "answered", "partly", "missing", "questions"}
    (outcome,) = shape["questions"]
    assert {"question", "verdict", "judged_by", "reasons", "evidence", "brief", "rests_on", "answer",
            "quotes"} == set(outcome)
    assert set(outcome["question"]) == {"text", "section", "source", "answer"}
    assert outcome["evidence"] and {"id", "citation", "similarity", "rank"} <= set(outcome["evidence"][0])


def test_dream_json_shape(store, capsys, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    shape = _json(capsys, "--config", str(store), "dream", "--offline", "--json")
    assert set(shape) == {"examined_chunks", "candidate_pairs", "duplicates", "conflicts", "superseded",
                          "still_active", "withdrawn", "mode", "seconds", "since", "report", "findings"}
    assert shape["findings"], "the fixture plants three findings"
    for finding in shape["findings"]:
        assert set(finding) == {"relation", "a", "b", "detail", "judged_by", "similarity"}
        for passage in (finding["a"], finding["b"]):
            assert set(passage) == PASSAGE_KEYS
            assert passage["updated"] is None or _iso(passage["updated"])


def test_gaps_json_shape(store, capsys):
    _json(capsys, "--config", str(store), "search", "parking for visitors", "--json")  # logged, not answered
    shape = _json(capsys, "--config", str(store), "gaps", "--offline", "--json")
    assert {"since", "entries", "unanswered", "mode", "themes", "single"} <= set(shape)
    _iso(shape["since"])
    for theme in shape["themes"] + shape["single"]:
        assert _iso(theme["first_asked"]) <= _iso(theme["last_asked"])


def test_eval_json_shape(capsys, tmp_path, monkeypatch, embedder):
    monkeypatch.chdir(tmp_path)
    real = evaluate.evaluate
    monkeypatch.setattr(evaluate, "evaluate", lambda *a, **kw: real(*a, **kw, embedder=embedder))
    shape = _json(capsys, "eval", str(FIXTURES / "beir-tiny"), "--limit-queries", "1", "--json")
    assert set(shape) == {"dataset", "documents", "chunks", "queries", "ingest_seconds", "ingest", "store", "half",
                          "modes"}
    assert {m["mode"] for m in shape["modes"]} == {"hybrid", "dense", "keyword"}


def test_a_reader_that_leaves_early_ends_the_output_quietly(store):
    """`corpus status --json | head -1`: the pipe closes before the output is written; no traceback."""
    command = subprocess.Popen([sys.executable, "-m", "cli.main", "--config", str(store), "status", "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    command.stdout.close()
    _, err = command.communicate(timeout=300)
    assert command.returncode == 141
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err.decode()


def test_at_80_columns_source_names_are_whole(store, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["--config", str(store), "status"]) == 0
    out = capsys.readouterr().out
    assert LONG_NAME in out
    assert f"{LONG_NAME}/padded.txt" in out
    assert all(len(line) <= 80 for line in out.splitlines() if LONG_NAME not in line)


def test_at_80_columns_search_never_cuts_a_citation(store, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    citations = [hit["citation"] for hit in _json(capsys, "--config", str(store), "search", "travel policy",
                                                   "--json")["hits"]]
    assert any(len(c) > 80 for c in citations), "the test needs citations longer than the terminal is wide"
    assert main(["--config", str(store), "search", "travel policy"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for citation in citations:
        assert citation in lines, f"{citation} is not whole on a line of its own"


def test_at_80_columns_the_ingest_summary_names_sources_whole(store, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["--config", str(store), "ingest"]) == 0
    out = capsys.readouterr().out
    assert f"{LONG_NAME}\n" in out and "…" not in out
    assert "unchanged 7" in out and "time " in out
