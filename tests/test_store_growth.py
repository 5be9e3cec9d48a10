"""A store that does not grow for nothing (issue 13): old generations go once no reader holds them, an
annotation-only publish links the vectors it has, and a reader keeps the generation it holds."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import store.replica
from connectors import load_config
from ingest.dream import dream
from ingest.pipeline import ingest
from ingest.progress import Progress
from server.search import Searcher
from store.publish import current_generation, hold, mark_unpublished, publish, published_root, vectors_of
from tests.conftest import docs_source, write_config

FIXTURE = Path(__file__).parent / "fixtures" / "dream"
QUERY = "daily meal allowance on business trips"


@pytest.fixture
def corpus(tmp_path, embedder, monkeypatch):
    monkeypatch.setattr(store.replica, "CHECK_EVERY", 0.0)  # look for a new generation at every search
    monkeypatch.setattr(store.replica, "SWAP_WAIT", 60.0)  # and wait for it to open
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)  # dream's offline rule
    shutil.copytree(FIXTURE, tmp_path / "docs")
    config = load_config(write_config(tmp_path, docs_source("wiki", tmp_path / "docs")))
    ingest(config, embedder=embedder, progress=Progress(interval=999))
    return config


def generations(store_path: Path) -> set[str]:
    return {p.name for p in published_root(store_path).iterdir() if p.is_dir()}


def inodes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_ino for p in folder.rglob("*") if p.is_file()}


def edit(config, embedder, name: str, text: str) -> None:
    (config.sources[0].path / name).write_text(text)
    ingest(config, embedder=embedder, progress=Progress(interval=999))


def test_every_old_generation_goes_once_no_reader_holds_it(corpus):
    store_path = corpus.store_path
    held = current_generation(store_path)
    claim = hold(held)
    try:
        for _ in range(3):
            mark_unpublished(store_path)
            publish(store_path, with_vectors=True)
        # the generations between the held one and the current went, though none was more than two behind
        assert generations(store_path) == {held.name, current_generation(store_path).name}
    finally:
        os.close(claim)
    (published_root(store_path) / ".staging-9-killed").mkdir()  # what a publish killed midway leaves
    mark_unpublished(store_path)
    publish(store_path, with_vectors=True)
    assert generations(store_path) == {current_generation(store_path).name}


def test_dream_publishes_its_annotations_with_links_to_the_vectors_readers_see(corpus, embedder):
    store_path = corpus.store_path
    before = current_generation(store_path)
    claim = hold(before)  # kept, to compare the two generations' files
    try:
        dream(corpus)
        after = current_generation(store_path)
        assert after != before
        assert inodes(after / "chroma") == inodes(before / "chroma")  # the same files: no second copy
        assert vectors_of(after) == vectors_of(before) == before.name
        assert (after / "manifest.sqlite").stat().st_ino != (before / "manifest.sqlite").stat().st_ino
    finally:
        os.close(claim)
    searcher = Searcher(corpus, embedder)
    try:
        notes = [n for h in searcher.search(QUERY) for n in h.notes]
    finally:
        searcher.replica.close()
    assert any(n.startswith("possibly superseded by “Travel policy 2026”") for n in notes)


def test_changed_vectors_are_copied_even_when_a_dream_follows_a_killed_ingest(corpus):
    store_path = corpus.store_path
    before = current_generation(store_path)
    mark_unpublished(store_path)  # a run that wrote vectors and was killed before publishing
    mark_unpublished(store_path, vectors=False)  # then only annotations
    after = publish(store_path, with_vectors=True)
    assert (after / "chroma" / "chroma.sqlite3").stat().st_nlink == 1
    assert vectors_of(after) == after.name and not before.exists()


def test_a_reader_keeps_reading_its_generation_through_ingests_and_dreams(corpus, embedder):
    searcher = Searcher(corpus, embedder)
    try:
        with searcher.replica.reading() as old:
            count = old.store.collection.count()
            edit(corpus, embedder, "parking.md", "# Parking\n\nVisitor parking is on level minus two.\n")
            dream(corpus)  # links the vectors of the generation the edit published
            edit(corpus, embedder, "parking.md", "# Parking\n\nVisitor parking is on level minus three.\n")
            assert any("minus three" in h.text for h in searcher.search("where do visitors park"))
            # the held generation still answers as it did, from its own copy and manifest
            assert old.store.collection.count() == count
            assert old.db.execute("SELECT count(*) FROM chunk_meta").fetchone()[0] == count
            assert not any("parking" in text.lower() for text in old.store.collection.get()["documents"])
            assert generations(corpus.store_path) == {old.generation.name,
                                                      current_generation(corpus.store_path).name}
        dream(corpus)  # links to the generation the searcher now holds; the one let go goes
        assert not old.generation.exists()
        searcher.replica.close()
        dream(corpus)  # its links outlive the generation they were made from, which goes now
        assert generations(corpus.store_path) == {current_generation(corpus.store_path).name}
    finally:
        searcher.replica.close()
    fresh = Searcher(corpus, embedder)
    try:
        hits = fresh.search("where do visitors park")
        assert any("minus three" in h.text for h in hits)
    finally:
        fresh.replica.close()


def test_a_reader_serves_a_dream_generation_with_the_vectors_it_has_open(corpus, embedder):
    searcher = Searcher(corpus, embedder)
    try:
        with searcher.replica.reading() as before:
            private = before.private
        dream(corpus)
        with searcher.replica.reading() as after:
            assert after.generation != before.generation and after.private == private  # no second copy
            assert any(n.startswith("possibly superseded") for h in searcher.search(QUERY) for n in h.notes)
        edit(corpus, embedder, "parking.md", "# Parking\n\nVisitor parking is on level minus two.\n")
        with searcher.replica.reading() as changed:  # new vectors: a copy of its own, the shared one closed
            assert changed.private != private and not private.exists()
            assert any("minus two" in h.text for h in searcher.search("where do visitors park"))
    finally:
        searcher.replica.close()
