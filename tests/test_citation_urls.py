"""Citations that open off this machine: a source's ``url`` template, a meetings source's ``recording_url``."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from connectors import load_config, open_connector
from corpus.errors import ConfigError
from ingest.pipeline import ingest
from server.search import Searcher
from tests.conftest import docs_source, load_all, shared, write_config

HANDBOOK_URL = "https://handbook.tts.gsa.gov/{path_noext}/"


def _meeting(tmp_path, path, **options: str):
    """The one meeting a meetings source on ``path`` with these options loads."""
    lines = [f'[[sources]]\nname = "calls"\nkind = "meetings"\npath = "{path}"']
    lines += [f'{key} = "{value}"' for key, value in options.items()]
    config = load_config(write_config(tmp_path, "\n".join(lines) + "\n"))
    (meeting,) = load_all(open_connector(config.sources[0]))[0].values()
    return meeting


@pytest.mark.slow
def test_the_handbook_cites_its_web_pages_with_heading_anchors(tmp_path, embedder):
    pages = shared("docs", "18f-handbook", "pages")
    source = docs_source("handbook", pages, url=HANDBOOK_URL, include=["hiring-staying-or-changing-jobs/**"])
    config = load_config(write_config(tmp_path, source))
    ingest(config, embedder=embedder)
    hits = Searcher(config, embedder).search("TTS offboarding form when leaving", limit=3)
    page = "https://handbook.tts.gsa.gov/hiring-staying-or-changing-jobs/leaving-tts/"
    assert hits[0].citation == f"{page}#1-fill-out-the-tts-offboarding-form", [h.citation for h in hits]
    assert hits[0].citation_label.startswith("handbook/hiring-staying-or-changing-jobs/leaving-tts.md § ")
    assert all(h.citation.startswith("https://handbook.tts.gsa.gov/") for h in hits)


def test_path_parts_are_percent_encoded_and_file_uris_stay_without_a_template(tmp_path):
    folder = tmp_path / "docs" / "Team notes"
    folder.mkdir(parents=True)
    (folder / "Q&A é.md").write_text("# Q&A\n\n## Who approves travel?\n\nYour supervisor approves travel.\n")
    web_source = docs_source("web", tmp_path / "docs", url="https://wiki.example.org/{path}")
    config = load_config(write_config(tmp_path, web_source + docs_source("local", tmp_path / "docs")))
    web, _ = load_all(open_connector(config.source("web")))
    document = web["Team notes/Q&A é.md"]
    assert document.citation.uri == "https://wiki.example.org/Team%20notes/Q%26A%20%C3%A9.md"
    assert document.blocks[0].citation.uri == f"{document.citation.uri}#who-approves-travel"
    local, _ = load_all(open_connector(config.source("local")))
    assert local["Team notes/Q&A é.md"].blocks[0].citation.uri.startswith("file:///")


def test_a_meeting_with_recording_url_is_cited_at_its_second(tmp_path):
    call = shared("transcripts", "powershell-community-call", "20240718_ChatTranscript.md")
    meeting = _meeting(tmp_path, call, recording_url="https://videos.example.org/{path_noext}")
    late = next(b for b in meeting.blocks if b.locator.start > 600)
    assert late.citation.uri == f"https://videos.example.org/20240718_ChatTranscript?t={int(late.locator.start)}"
    assert meeting.citation.uri == "https://videos.example.org/20240718_ChatTranscript"

    # a recording address that already has a query gets &t=, as YouTube expects
    meeting = _meeting(tmp_path, call, recording_url="https://www.youtube.com/watch?v={path_noext}")
    late = next(b for b in meeting.blocks if b.locator.start > 600)
    assert parse_qs(urlsplit(late.citation.uri).query) == {"v": ["20240718_ChatTranscript"],
                                                          "t": [str(int(late.locator.start))]}

    # without a recording, url makes the transcript's citations open on the web, at #t= as before
    meeting = _meeting(tmp_path, call, url="https://notes.example.org/{path}")
    assert meeting.blocks[0].citation.uri == "https://notes.example.org/20240718_ChatTranscript.md#t=03:34"


@pytest.mark.parametrize("template,message", [
    ("https://h.example.org/{name}/", r"unknown placeholder \{name\}"),
    ("https://h.example.org/{path:>9}", r"unknown placeholder \{path\}"),
    ("https://h.example.org/{path", "brace"),
    ("handbook/{path}", "scheme"),
])
def test_a_bad_template_is_a_config_error_naming_the_key(tmp_path, template, message):
    with pytest.raises(ConfigError, match=rf"corpus.toml:\d+: sources\[0\]\.url: .*{message}"):
        load_config(write_config(tmp_path, docs_source("handbook", tmp_path, url=template)))


def test_slack_sources_keep_their_permalinks_and_refuse_url(tmp_path):
    slack = shared("slack", "hfaran-testarchive", "extracted")
    source = f'[[sources]]\nname = "chat"\nkind = "slack"\npath = "{slack}"\nurl = "https://x.example.org/{{path}}"\n'
    with pytest.raises(ConfigError, match=r"sources\[0\]\.url: .*only docs and meetings sources cite files"):
        load_config(write_config(tmp_path, source))
    with pytest.raises(ConfigError, match=r"sources\[0\]\.recording_url: unknown key"):
        load_config(write_config(tmp_path, docs_source("handbook", tmp_path, recording_url="https://v.example.org/")))
