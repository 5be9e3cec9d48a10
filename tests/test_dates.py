"""True dates: front matter, the last git commit, a file's own properties, the transcript or the Slack
timestamp, and only then the mtime (which a copy resets); every hit says where its date came from."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import docx
import pytest

from connectors import dates, load_config, open_connector
from ingest.pipeline import ingest
from server.mcp_server import SearchResult, render_hits
from server.search import Searcher
from store.filters import Filters
from tests.conftest import docs_source, load_all, shared, write_config

FIRST = datetime(2018, 2, 3, 4, 5, 6, tzinfo=UTC)
LAST = datetime(2019, 6, 7, 8, 9, 10, tzinfo=UTC)


def _git(repo: Path, *args: str, when: datetime | None = None) -> None:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "Ann", "GIT_AUTHOR_EMAIL": "ann@example.org",
           "GIT_COMMITTER_NAME": "Ann", "GIT_COMMITTER_EMAIL": "ann@example.org"}
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = when.isoformat()
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


def _docx(path: Path, created: datetime, modified: datetime) -> None:
    document = docx.Document()
    document.add_paragraph("The travel policy: book trains for trips under four hours.")
    document.core_properties.created = created
    document.core_properties.modified = modified
    document.save(str(path))


@pytest.fixture
def repo(tmp_path) -> Path:
    """A work tree whose handbook/ folder is the source: files committed back-dated, one edited since,
    one never committed, one outside the source committed later."""
    repo = tmp_path / "repo"
    pages = repo / "handbook" / "travel"
    pages.mkdir(parents=True)
    _git(repo, "init", "-q")
    (pages / "trains.md").write_text("# Trains\n\nBook trains for trips under four hours.\n")
    (pages / "planes.md").write_text("---\nlastmod: 2021-05-06\n---\n# Planes\n\nFly economy class.\n")
    (pages / "hotels.md").write_text("# Hotels\n\nStay near the office.\n")
    _docx(pages / "policy.docx", datetime(2016, 1, 1, tzinfo=UTC), datetime(2017, 8, 9, 10, 11, 12, tzinfo=UTC))
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "first", when=FIRST)
    with (pages / "trains.md").open("a") as f:
        f.write("\nFirst class needs approval.\n")
    _git(repo, "commit", "-qam", "trains", when=LAST)
    (repo / "outside.md").write_text("# Outside\n\nNot in the source.\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "outside", when=LAST + timedelta(days=300))
    with (pages / "hotels.md").open("a") as f:
        f.write("\nEdited, not committed yet.\n")
    (pages / "taxis.md").write_text("# Taxis\n\nTake a taxi after midnight.\n")
    return repo


def _load(folder: Path, source: str) -> dict:
    folder.mkdir(exist_ok=True)
    config = load_config(write_config(folder, source))
    loaded, failed = load_all(open_connector(config.sources[0]))
    assert not failed
    return loaded


def test_the_last_commit_dates_a_file_and_front_matter_beats_it(repo, tmp_path):
    docs = _load(tmp_path, docs_source("handbook", repo / "handbook"))
    trains, planes = docs["travel/trains.md"], docs["travel/planes.md"]
    assert (trains.updated, trains.date_source) == (LAST, "git")  # the last of its two commits
    assert (planes.updated, planes.date_source) == (datetime(2021, 5, 6), "front matter")
    assert docs["travel/policy.docx"].date_source == "git"  # git comes before the file's own properties
    for edited in ("travel/hotels.md", "travel/taxis.md"):  # changed since the last commit, or never committed
        assert docs[edited].date_source == "mtime"
        assert abs(docs[edited].updated - datetime.now(UTC)) < timedelta(days=1)


def test_without_git_on_path_the_next_date_applies(repo, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs-here"))
    docs = _load(tmp_path, docs_source("handbook", repo / "handbook"))
    assert docs["travel/trains.md"].date_source == "mtime"
    assert docs["travel/planes.md"].date_source == "front matter"
    policy = docs["travel/policy.docx"]
    assert (policy.updated, policy.date_source) == (datetime(2017, 8, 9, 10, 11, 12, tzinfo=UTC), "metadata")


def test_a_docx_outside_git_is_dated_by_its_core_properties(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    _docx(folder / "policy.docx", datetime(2016, 1, 1, tzinfo=UTC), datetime(2017, 8, 9, 10, 11, 12, tzinfo=UTC))
    (folder / "notes.txt").write_text("Plain text has no date of its own.\n")
    docs = _load(tmp_path, docs_source("docs", folder))
    policy = docs["policy.docx"]
    assert (policy.updated, policy.date_source) == (datetime(2017, 8, 9, 10, 11, 12, tzinfo=UTC), "metadata")
    assert policy.created == datetime(2016, 1, 1, tzinfo=UTC)
    assert docs["notes.txt"].date_source == "mtime"


def test_pdf_and_email_dates_come_from_the_file(tmp_path):
    examples = shared("docs", "unstructured-example-docs")
    pdf = _load(tmp_path, docs_source("pdfs", examples / "pdf", include=["multi-column-2p.pdf"]))
    paper = pdf["multi-column-2p.pdf"]
    assert (paper.updated, paper.date_source) == (datetime(2020, 10, 2, 0, 12, 8, tzinfo=UTC), "metadata")
    mail = _load(tmp_path / "mail", docs_source("mail", examples / "eml", include=["family-day.eml"]))
    assert mail["family-day.eml"].date_source == "metadata"
    assert dates.pdf_date("D:20161116114124+11'00'") == datetime(2016, 11, 16, 11, 41, 24,
                                                                 tzinfo=timezone(timedelta(hours=11)))
    assert dates.pdf_date("D:20230525051224Z00'00'") == datetime(2023, 5, 25, 5, 12, 24, tzinfo=UTC)
    assert dates.pdf_date("") is None and dates.pdf_date("D:2023-xx") is None


def test_meetings_are_dated_by_their_transcript_and_slack_by_its_messages(tmp_path):
    calls = shared("transcripts", "powershell-community-call")
    source = f'[[sources]]\nname = "calls"\nkind = "meetings"\npath = "{calls}"\n' \
             'include = ["20240718_ChatTranscript.md", "20230921_ChatTranscript.md"]\n'
    meetings = _load(tmp_path, source)
    assert meetings["20240718_ChatTranscript.md"].date_source == "transcript"  # the Teams header
    assert meetings["20230921_ChatTranscript.md"].date_source == "file name"  # cues only, no header
    slack = shared("slack", "hfaran-testarchive", "extracted")
    threads = _load(tmp_path / "slack", f'[[sources]]\nname = "chat"\nkind = "slack"\npath = "{slack}"\n')
    assert threads and {d.date_source for d in threads.values()} == {"slack"}


def test_filters_and_hits_see_the_true_dates(repo, tmp_path, embedder):
    config = load_config(write_config(tmp_path, docs_source("handbook", repo / "handbook")))
    ingest(config, embedder=embedder)
    searcher = Searcher(config, embedder)
    old = searcher.search("book trains for short trips", limit=10, filters=Filters(before=datetime(2020, 1, 1)))
    assert {h.citation_label for h in old} == {"handbook/travel/trains.md", "handbook/travel/policy.docx"}
    assert {h.date_source for h in old} == {"git"}
    recent = searcher.search("fly economy", limit=10, filters=Filters(after=datetime(2021, 1, 1),
                                                                      before=datetime(2022, 1, 1)))
    assert [(h.title, h.date, h.date_source) for h in recent] == [("Planes", "2021-05-06", "front matter")]
    assert "2021-05-06 (date from front matter)" in render_hits(SearchResult(query="fly economy", hits=recent))
