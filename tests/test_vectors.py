"""The manifest's own copy of the chunk vectors: the same as Chroma's after every kind of ingest, and a store
written before the copy existed still ranks exactly (the missing vectors come from Chroma)."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings as ChromaSettings

from connectors import load_config
from ingest.pipeline import ingest
from store import vectors
from store.filters import NO_FILTERS, Filters
from tests.conftest import SAMPLE, docs_source, write_config

pytestmark = pytest.mark.slow  # each test ingests the sample corpus more than once


def collection(store: Path):
    client = chromadb.PersistentClient(path=str(store / "chroma"), settings=ChromaSettings(anonymized_telemetry=False))
    return client.get_collection("corpus")


def chroma_vectors(store: Path) -> dict[str, np.ndarray]:
    got = collection(store).get(include=["embeddings"])
    return dict(zip(got["ids"], got["embeddings"], strict=True))


def manifest_vectors(store: Path) -> dict[str, np.ndarray]:
    with sqlite3.connect(store / "manifest.sqlite") as db:
        rows = db.execute("SELECT m.chunk_id, v.vector FROM chunk_meta m JOIN chunk_vectors v ON v.rowid = m.rowid")
        kept = {chunk_id: np.frombuffer(blob, dtype=np.float32) for chunk_id, blob in rows}
        assert db.execute("SELECT count(*) FROM chunk_vectors").fetchone()[0] == len(kept)  # none left behind
    return kept


def same(ours: dict[str, np.ndarray], chroma: dict[str, np.ndarray]) -> bool:
    """Equal up to the last bit: Chroma gives a cosine collection's vectors back from its normalised copies."""
    return ours.keys() == chroma.keys() and all(np.allclose(v, chroma[i], rtol=0, atol=1e-6) for i, v in ours.items())


def test_the_manifest_holds_the_vectors_chroma_holds_through_updates_deletes_and_removed_sources(tmp_path, embedder):
    handbook, extra = tmp_path / "handbook", tmp_path / "extra"
    shutil.copytree(SAMPLE, handbook)
    extra.mkdir()
    (extra / "a.md").write_text("# Parking\n\nVisitors park in bay 7.\n")
    store = tmp_path / "store"
    both = docs_source("handbook", handbook) + docs_source("extra", extra)
    ingest(load_config(write_config(tmp_path, both)), embedder=embedder)
    first = manifest_vectors(store)
    assert len(first) > 20 and same(first, chroma_vectors(store))

    oncall = handbook / "engineering" / "oncall.md"
    oncall.write_text(oncall.read_text() + "\n## Pager etiquette\n\nAcknowledge every page within five minutes.\n")
    (handbook / "people" / "expenses.md").unlink()
    (handbook / "welcome.md").write_text("# Welcome\n\nNow it is short.\n")
    ingest(load_config(write_config(tmp_path, both)), embedder=embedder)
    changed = manifest_vectors(store)
    assert changed.keys() != first.keys() and same(changed, chroma_vectors(store))

    ingest(load_config(write_config(tmp_path, docs_source("handbook", handbook))), embedder=embedder)
    assert same(manifest_vectors(store), chroma_vectors(store))


def test_vectors_the_manifest_lacks_come_from_chroma_with_the_same_ranking(tmp_path, embedder):
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE, docs)
    ingest(load_config(write_config(tmp_path, docs_source("handbook", docs))), embedder=embedder)
    store = tmp_path / "store"
    chroma = collection(store)

    def lookup(ids: list[str]) -> dict[str, Sequence[float]]:
        got = chroma.get(ids=ids, include=["embeddings"])
        return dict(zip(got["ids"], got["embeddings"], strict=True))

    query = embedder.embed(["how does the on-call hand-off work?"])[0]
    cases = (NO_FILTERS, Filters(people=["Tomás Herrera"]), Filters(sources=["handbook"], groups=["eng"]))
    with sqlite3.connect(store / "manifest.sqlite") as db:
        full = [vectors.nearest(db, query, 50, filters, lambda ids: {}) for filters in cases]
        assert all(full)
        db.execute("DELETE FROM chunk_vectors WHERE rowid % 2 = 0")  # as if half were written before the table
        assert [vectors.nearest(db, query, 50, filters, lookup) for filters in cases] == full
        db.execute("DROP TABLE chunk_vectors")  # a store no newer ingest has touched
        assert [vectors.nearest(db, query, 50, filters, lookup) for filters in cases] == full
        db.rollback()


def test_opening_the_writer_copies_in_the_vectors_an_older_store_lacks_and_publishes_them(tmp_path, embedder):
    from store.publish import current_generation
    from store.writer import writing

    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE, docs)
    config = load_config(write_config(tmp_path, docs_source("handbook", docs)))
    ingest(config, embedder=embedder)
    store = tmp_path / "store"
    with sqlite3.connect(store / "manifest.sqlite") as db:
        db.execute("DELETE FROM chunk_vectors WHERE rowid % 3 = 0")  # as a store written before the table
    before = current_generation(store)
    notes: list[str] = []
    with writing(config, embedder, note=notes.append):
        pass
    assert same(manifest_vectors(store), chroma_vectors(store))
    assert any("vectors copied" in note for note in notes)
    published = current_generation(store)
    assert published != before  # readers get the upgraded indexes without waiting for a change
    with sqlite3.connect(published / "manifest.sqlite") as db:
        assert db.execute("SELECT count(*) FROM chunk_vectors").fetchone()[0] == len(chroma_vectors(store))
    with writing(config, embedder, note=notes.append):
        pass
    assert current_generation(store) == published  # nothing left to upgrade: nothing published


def test_a_new_store_has_nothing_to_upgrade(tmp_path, embedder):
    from store.writer import writing

    config = load_config(write_config(tmp_path, docs_source("handbook", SAMPLE)))
    notes: list[str] = []
    with writing(config, embedder, note=notes.append):
        pass
    assert not any("upgraded" in note for note in notes), notes
