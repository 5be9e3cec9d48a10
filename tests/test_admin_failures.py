"""Failures an admin can act on: see them (`status --failed`), leave them out (`exclude`), read them again
(`ingest --retry-failed`); and the run says where its time went (per source, and the bar's pace)."""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path

import pytest

from cli.main import main
from connectors import load_config
from ingest.pipeline import ingest
from ingest.progress import Progress, pace
from ingest.status import status
from tests.conftest import docs_source, write_config

PADDED = "padded.txt"  # just over 1 MB on disk, two short paragraphs of text: over a 1 MB cap, cheap to embed


def _folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    (docs / "drafts").mkdir(parents=True)
    (docs / "parking.md").write_text("# Parking\n\nVisitors park in the Elm Street garage; reception validates.\n")
    (docs / "drafts" / "holidays.md").write_text("# Holidays\n\nThe office closes between Christmas and New Year.\n")
    (docs / PADDED).write_text("Badges are issued at reception.\n" + "\n" * 1_100_000 + "Return them when you leave.\n")
    return docs


def _config(tmp_path: Path, cap_mb: int = 1, **options):
    path = write_config(tmp_path, docs_source("handbook", tmp_path / "docs", **options),
                        extra=f"[ingest]\nmax_text_mb = {cap_mb}\nnice = 0\n")
    return load_config(path)


def _run(config, embedder, **kwargs):
    return ingest(config, embedder=embedder, progress=Progress(io.StringIO()), **kwargs).sources["handbook"]


@pytest.mark.slow
def test_a_failure_is_listed_with_since_when_and_read_again_only_on_retry(tmp_path, embedder, capsys):
    _folder(tmp_path)
    config = _config(tmp_path)
    first = _run(config, embedder)
    assert (first.added, first.failed) == (2, 1)
    (failure,) = status(config).failures
    assert (failure.source, failure.path) == ("handbook", PADDED)
    assert failure.reason.startswith("text too large")

    assert main(["--config", str(config.root / "corpus.toml"), "status", "--failed"]) == 0
    out = capsys.readouterr().out
    assert f"handbook/{PADDED}" in out and "text too large" in out and "since" in out
    assert "parking.md" not in out  # only what fails

    raised = _config(tmp_path, cap_mb=2)  # the cause is gone, the file is the same
    again = _run(raised, embedder)
    assert (again.added, again.failed) == (0, 1)
    assert "not retried" in dict(again.failures)[PADDED]
    assert status(raised).failures[0].since == failure.since  # failing again keeps since when

    retried = _run(raised, embedder, retry_failed=True)
    assert (retried.added, retried.failed, retried.unchanged) == (1, 0, 2)
    assert status(raised).failures == []


def test_retry_of_an_item_that_still_fails_reads_it_and_keeps_since(tmp_path, embedder):
    _folder(tmp_path)
    config = _config(tmp_path)
    _run(config, embedder)
    since = status(config).failures[0].since
    retried = _run(config, embedder, retry_failed=True)
    assert retried.failed == 1
    assert "not retried" not in dict(retried.failures)[PADDED]  # it was read again, and failed again
    assert status(config).failures[0].since == since


def test_excluded_files_leave_the_corpus_and_are_no_failure(tmp_path, embedder):
    _folder(tmp_path)
    first = _run(_config(tmp_path), embedder)
    assert (first.added, first.failed) == (2, 1)

    config = _config(tmp_path, exclude=["drafts", "*.txt"])  # a folder by its name, a file by a glob
    second = _run(config, embedder)
    assert second.deleted == 1  # drafts/holidays.md was in the corpus: it leaves it
    assert second.unchanged == 1  # parking.md is not read again because the source's exclude changed
    assert (second.added, second.updated, second.failed, second.failures) == (0, 0, 0, [])
    assert status(config).failures == []
    sources = {s.name: s for s in status(config).sources}
    assert sources["handbook"].documents == 1


def test_the_cli_lists_old_failures_once_retries_them_and_times_each_source(tmp_path, embedder, capsys, monkeypatch):
    _folder(tmp_path)
    _run(_config(tmp_path), embedder)
    config = _config(tmp_path, cap_mb=2)
    toml = str(config.root / "corpus.toml")
    monkeypatch.setenv("COLUMNS", "80")

    assert main(["--config", toml, "ingest"]) == 0
    out = capsys.readouterr().out
    assert "1 item(s) failed before and are unchanged" in out and "--retry-failed" in out
    assert PADDED not in out  # listed when it failed, not again on every run

    assert main(["--config", toml, "ingest", "--retry-failed"]) == 0
    out = capsys.readouterr().out
    assert "time" in out and "handbook" in out
    assert status(config).failures == []

    assert main(["--config", toml, "status", "--json"]) == 0
    run = json.loads(capsys.readouterr().out)["last_run"]
    assert run["summary"]["sources"]["handbook"]["added"] == 1
    assert run["summary"]["sources"]["handbook"]["seconds"] > 0
    assert datetime.fromisoformat(run["started"]) <= datetime.fromisoformat(run["finished"])


def test_pace_is_estimated_from_the_first_item_on_and_counts_down_between_items():
    assert pace(0.0, 0, 10, 0) == "0.0 chunks/s, estimating time left"
    assert pace(10.0, 5, 10, 100) == "10 chunks/s, 0:00:10 left"
    assert pace(120.0, 1, 31, 40) == "0.3 chunks/s, 1:00:00 left"  # one slow item in two minutes: 30 more, an hour
    assert pace(130.0, 1, 31, 40, waited=10.0) == "0.3 chunks/s, 0:59:50 left"  # ten seconds into the next one


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_terminal_bar_shows_chunks_per_second_and_time_left():
    stream = _Terminal()
    progress = Progress(stream)
    progress.start("handbook", 4)
    progress.advance(1, 12)
    progress.stop()
    drawn = stream.getvalue()
    assert "chunks/s" in drawn and " left" in drawn
    assert "-:--:--" not in drawn
