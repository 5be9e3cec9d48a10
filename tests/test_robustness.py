"""Bad items, bad sources and a bad store never stop a run or show a traceback; nothing outside a source is read."""

from __future__ import annotations

import io
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from connectors import load_config
from corpus.errors import ConfigError
from ingest.pipeline import ingest
from ingest.progress import Progress
from server.search import Searcher
from store.publish import current_generation
from tests.conftest import docs_source, shared, write_config

BAD_NAME = os.fsdecode(b"caf\xe9-notes.txt")  # Latin-1 bytes: not UTF-8


def corpus_cli(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=600)


def run(config: Path, embedder, **kwargs) -> tuple[object, str]:
    """An in-process ingest with its progress lines captured."""
    lines = io.StringIO()
    result = ingest(load_config(config), embedder=embedder, progress=Progress(lines), **kwargs)
    return result, lines.getvalue()


def published_ids(store: Path) -> set[str]:
    """Native ids of the documents in the current published generation: what readers are served."""
    generation = current_generation(store)
    assert generation is not None, "nothing was published"
    with sqlite3.connect(f"{(generation / 'manifest.sqlite').as_uri()}?mode=ro", uri=True) as db:
        return {row[0] for row in db.execute("SELECT native_id FROM documents WHERE pending IS NULL")}


def one_line(output: str, needle: str) -> str:
    found = [line for line in output.splitlines() if needle in line]
    assert len(found) == 1, output
    assert "Traceback" not in output, output
    return found[0]


@pytest.fixture
def folder(tmp_path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text("# Guide\n\nThe onboarding guide explains the laptop setup for new hires.\n")
    return docs


# -- item 5: a bad item never stops the run ------------------------------------------------------------


def test_a_file_name_that_is_not_utf8_is_one_line_and_the_rest_is_published(tmp_path, folder, embedder):
    (folder / BAD_NAME).write_bytes(b"Meeting notes about the espresso machine.\n")
    config = write_config(tmp_path, docs_source("docs", folder))
    result, lines = run(config, embedder)
    line = one_line(lines, "not valid UTF-8")
    assert line.startswith("docs/caf\\xe9-notes.txt:") and "rename" in line
    assert result.sources["docs"].added == 1 and result.sources["docs"].failed == 1
    assert published_ids(tmp_path / "store") == {"guide.md"}


def test_a_file_that_cannot_be_read_while_listing_is_one_line(tmp_path, folder, embedder):
    if os.access("/proc/1/cwd", os.R_OK):
        pytest.skip("/proc/1/cwd is readable here: no permission error to provoke")
    (folder / "proc.txt").symlink_to("/proc/1/cwd/x")
    config = write_config(tmp_path, docs_source("docs", folder) + "follow_external_links = true\n")
    result, lines = run(config, embedder)
    assert "Permission denied" in one_line(lines, "docs/proc.txt:")
    assert published_ids(tmp_path / "store") == {"guide.md"}


@pytest.mark.slow
def test_a_source_that_cannot_be_listed_keeps_its_documents_and_the_others_go_on(tmp_path, folder):
    archive = tmp_path / "export.zip"
    shutil.copy(shared("slack", "hfaran-testarchive", "testarchive.zip"), archive)
    config = write_config(tmp_path, docs_source("docs", folder)
                          + f'[[sources]]\nname = "chat"\nkind = "slack"\npath = "{archive}"\nbots = true\n')
    first = corpus_cli(config, "ingest")
    assert first.returncode == 0, first.stderr
    chat_docs = {nid for nid in published_ids(tmp_path / "store") if nid != "guide.md"}
    assert chat_docs

    archive.write_bytes(b"this is no longer a zip")
    (folder / "new.md").write_text("# Parking\n\nVisitors park in the blue zone behind building C.\n")
    second = corpus_cli(config, "ingest")
    output = second.stdout + second.stderr
    assert second.returncode == 0, output  # something was ingested: not a failed run
    assert "Traceback" not in output
    line = one_line(second.stdout, "not a Slack export")
    assert line.lstrip().startswith("chat: cannot list") and "kept" in line
    assert published_ids(tmp_path / "store") == {"guide.md", "new.md"} | chat_docs  # nothing lost, new published
    search = corpus_cli(config, "search", "where do visitors park?", "--json")
    assert "blue zone" in search.stdout, search.stdout + search.stderr


# -- item 6: nothing outside a source is read -----------------------------------------------------------


def test_a_link_out_of_the_source_is_not_followed_and_inside_links_work(tmp_path, folder, embedder):
    outside = tmp_path / "secret.txt"
    outside.write_text("The root password of the payroll server is swordfish.\n")
    (folder / "passwd.txt").symlink_to("/etc/passwd")
    (folder / "secret.txt").symlink_to(outside)
    (folder / "alias.md").symlink_to(folder / "guide.md")
    (folder / "loop-a.md").symlink_to(folder / "loop-b.md")
    (folder / "loop-b.md").symlink_to(folder / "loop-a.md")
    (folder / "parent").symlink_to(tmp_path)
    (folder / "self").symlink_to(folder)
    config = write_config(tmp_path, docs_source("docs", folder))
    result, lines = run(config, embedder)
    for name, target in (("passwd.txt", "/etc/passwd"), ("secret.txt", str(outside))):
        line = one_line(lines, f"docs/{name}:")
        assert target in line and "outside" in line and "follow_external_links" in line
    assert published_ids(tmp_path / "store") == {"guide.md", "alias.md"}
    hits = Searcher(load_config(config), embedder).search("root password payroll server")
    assert not any("swordfish" in h.text or "/etc/passwd" in h.citation for h in hits)


@pytest.mark.slow
def test_a_transcript_beside_a_recording_linked_from_outside_is_not_read(tmp_path, embedder):
    from connectors.meetings import Settings, connector
    from tests.conftest import load_all

    meetings = tmp_path / "meetings"
    meetings.mkdir()
    shutil.copy(shared("audio", "faster-whisper", "jfk.flac"), meetings / "address.flac")
    outside = tmp_path / "private.vtt"
    outside.write_text("WEBVTT\n\n00:00.000 --> 00:05.000\n<v HR>The payroll password is swordfish.\n")
    (meetings / "address.vtt").symlink_to(outside)
    settings = Settings(name="m", kind="meetings", path=meetings)
    loaded, failed = load_all(connector(settings))
    words = " ".join(b.text for doc in loaded.values() for b in doc.blocks)
    assert "swordfish" not in words and "country" in words  # transcribed from the audio instead
    allowed, _ = load_all(connector(Settings(name="m", kind="meetings", path=meetings, follow_external_links=True)))
    assert "swordfish" in " ".join(b.text for doc in allowed.values() for b in doc.blocks)


def test_a_link_out_of_the_source_is_read_when_the_source_allows_it(tmp_path, folder, embedder):
    outside = tmp_path / "policy.txt"
    outside.write_text("The shared travel policy lives outside this folder.\n")
    (folder / "policy.txt").symlink_to(outside)
    config = write_config(tmp_path, docs_source("docs", folder) + "follow_external_links = true\n")
    result, lines = run(config, embedder)
    assert result.sources["docs"].failed == 0, lines
    assert published_ids(tmp_path / "store") == {"guide.md", "policy.txt"}


def test_a_link_that_was_ingested_before_is_removed_once_refused(tmp_path, folder, embedder):
    (folder / "passwd.txt").symlink_to("/etc/passwd")
    allowed = write_config(tmp_path, docs_source("docs", folder) + "follow_external_links = true\n")
    run(allowed, embedder)
    assert "passwd.txt" in published_ids(tmp_path / "store")
    strict = write_config(tmp_path, docs_source("docs", folder))
    run(strict, embedder)
    assert published_ids(tmp_path / "store") == {"guide.md"}


# -- item 10: every failure is one line that says what to do ---------------------------------------------


@pytest.mark.slow
def test_a_corrupt_manifest_is_one_line_and_full_sets_it_aside(tmp_path, folder):
    config = write_config(tmp_path, docs_source("docs", folder))
    assert corpus_cli(config, "ingest").returncode == 0
    manifest = tmp_path / "store" / "manifest.sqlite"
    manifest.write_bytes(b"\x13garbage" * 1000)
    for command in ("ingest", "status"):
        broken = corpus_cli(config, command)
        assert broken.returncode == 2 and "Traceback" not in broken.stderr, broken.stderr
        assert str(manifest) in broken.stderr and "corpus ingest --full" in broken.stderr
        assert len(broken.stderr.strip().splitlines()) == 1, broken.stderr
    rebuilt = corpus_cli(config, "ingest", "--full")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "set aside" in rebuilt.stdout + rebuilt.stderr
    assert list(manifest.parent.glob("manifest.sqlite.corrupt-*"))
    assert published_ids(tmp_path / "store") == {"guide.md"}


def test_a_store_path_that_is_a_file_is_a_config_error(tmp_path, folder):
    (tmp_path / "store").write_text("not a folder")
    config = write_config(tmp_path, docs_source("docs", folder))
    for command in (("ingest",), ("search", "laptop"), ("status",)):
        result = corpus_cli(config, *command)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert "corpus.path" in result.stderr and "not a folder" in result.stderr


def test_search_without_a_store_names_the_path_and_says_to_ingest(tmp_path, folder):
    config = write_config(tmp_path, docs_source("docs", folder))
    result = corpus_cli(config, "search", "laptop")
    assert result.returncode == 2, result.stdout
    assert f"no corpus at {tmp_path / 'store'}" in result.stderr and "corpus ingest" in result.stderr


def test_a_deeply_nested_toml_array_is_a_config_error(tmp_path):
    config = tmp_path / "corpus.toml"
    config.write_text("[corpus]\nx = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="nested"):
        load_config(config)


def test_two_tokens_reading_the_same_environment_variable_are_a_config_error(tmp_path, folder):
    config = write_config(tmp_path, docs_source("docs", folder), extra="""\
        [[server.tokens]]
        name = "eng"
        env = "CORPUS_TOKEN"

        [[server.tokens]]
        name = "hr"
        env = "CORPUS_TOKEN"
        """)
    with pytest.raises(ConfigError, match=r"corpus.toml:9: server.tokens\[1\].env: .*CORPUS_TOKEN.*\beng\b"):
        load_config(config)


def test_deeply_nested_html_keeps_its_text(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    depth = 300  # past libxml2's 255 levels, where unstructured's parser drops everything
    (docs / "deep.html").write_text("<html><body>" + "<div>" * depth + "<p>Expense reports are due on Fridays.</p>"
                                    + "</div>" * depth + "</body></html>")
    config = write_config(tmp_path, docs_source("docs", docs))
    result, lines = run(config, embedder)
    assert result.sources["docs"].added == 1, lines
    hits = Searcher(load_config(config), embedder).search("when are expense reports due")
    assert hits and "Fridays" in hits[0].text


def test_an_mp3_that_cannot_be_decoded_says_so(tmp_path, embedder):
    meetings = tmp_path / "meetings"
    meetings.mkdir()
    rng = random.Random(1)  # MP3 frame headers over noise: PyAV finds frames and decodes none of them
    (meetings / "standup.mp3").write_bytes(b"".join(bytes([0xFF, 0xFB, 0x90, 0x64]) + rng.randbytes(413)
                                                    for _ in range(200)))
    config = write_config(tmp_path, f'[[sources]]\nname = "m"\nkind = "meetings"\npath = "{meetings}"\n')
    result, lines = run(config, embedder)
    line = one_line(lines, "m/standup.mp3:")
    assert "cannot decode audio" in line and "no speech" not in line


@pytest.mark.slow
def test_a_full_disk_at_publish_keeps_the_previous_generation_and_the_next_run_publishes(tmp_path, folder, embedder):
    """ENOSPC for real: the published folder is a 4 MB tmpfs, filled up before the second publish."""
    published = tmp_path / "store" / "published"
    published.mkdir(parents=True)
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(published)], capture_output=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mount.stderr.decode().strip()}")
    try:
        config = write_config(tmp_path, docs_source("docs", folder))
        run(config, embedder)
        before = current_generation(tmp_path / "store")
        filler = published / "filler"
        filler.write_bytes(bytes(shutil.disk_usage(published).free - 64 * 1024))
        (folder / "parking.md").write_text("# Parking\n\nVisitors park in the blue zone behind building C.\n")

        full = corpus_cli(config, "ingest")
        assert full.returncode == 2 and "Traceback" not in full.stderr, full.stderr
        error = one_line(full.stderr, "cannot publish")
        assert "No space left on device" in error or "disk is full" in error, error
        assert current_generation(tmp_path / "store") == before
        assert published_ids(tmp_path / "store") == {"guide.md"}
        searcher = Searcher(load_config(config), embedder)
        hits = searcher.search("laptop setup for new hires")
        searcher.replica.close()
        assert hits and "laptop" in hits[0].text
        assert {p.name for p in published.iterdir()} == {before.name, "CURRENT", "UNPUBLISHED", "filler"}

        filler.unlink()
        run(config, embedder)
        assert published_ids(tmp_path / "store") == {"guide.md", "parking.md"}
    finally:
        subprocess.run(["umount", "--lazy", str(published)], check=True)
