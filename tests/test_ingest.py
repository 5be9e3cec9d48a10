"""Ingest into a real Chroma store: incremental, all-or-nothing, and never losing what is stored."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import chromadb
import pytest
from chromadb.config import Settings as ChromaSettings

from connectors import load_config
from corpus.errors import StoreLockedError, StoreMismatchError
from ingest.pipeline import ingest
from store.lock import WriterLock
from tests.conftest import SAMPLE, docs_source, shared, write_config


class CountingEmbedder:
    """The real embedder, counting what it is asked to embed."""

    def __init__(self, real):
        self.real = real
        self.embedded = 0

    def __getattr__(self, name):
        return getattr(self.real, name)

    def embed(self, texts):
        self.embedded += len(texts)
        return self.real.embed(texts)


def snapshot(store: Path) -> dict[str, tuple[str, dict]]:
    client = chromadb.PersistentClient(path=str(store / "chroma"), settings=ChromaSettings(anonymized_telemetry=False))
    got = client.get_collection("corpus").get(include=["documents", "metadatas"])
    return {i: (d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)}


@pytest.fixture
def docs(tmp_path) -> Path:
    folder = tmp_path / "docs"
    shutil.copytree(SAMPLE, folder)
    return folder


def test_incremental_ingest_skips_updates_and_deletes(tmp_path, docs, embedder):
    config = load_config(write_config(tmp_path, docs_source("handbook", docs)))
    counting = CountingEmbedder(embedder)
    first = ingest(config, embedder=counting).sources["handbook"]
    assert (first.added, first.failed) == (11, 0)
    before = snapshot(tmp_path / "store")
    assert len(before) == first.chunks == counting.embedded

    counting.embedded = 0
    second = ingest(config, embedder=counting).sources["handbook"]
    assert (second.added, second.updated, second.deleted, second.unchanged) == (0, 0, 0, 11)
    assert counting.embedded == 0
    assert snapshot(tmp_path / "store") == before

    # a touch that leaves the bytes alone costs a hash, not an embedding
    os.utime(docs / "welcome.md", (1, 1))
    touched = ingest(config, embedder=counting).sources["handbook"]
    assert (touched.updated, touched.unchanged, counting.embedded) == (0, 11, 0)

    oncall = docs / "engineering" / "oncall.md"
    oncall.write_text(oncall.read_text() + "\n## Pager etiquette\n\nAcknowledge every page within five minutes.\n")
    changed = ingest(config, embedder=counting).sources["handbook"]
    assert (changed.updated, changed.unchanged) == (1, 10)
    after = snapshot(tmp_path / "store")
    oncall_doc = {m["doc_id"] for _, m in after.values() if "engineering/oncall" in m["citation_label"]}
    assert counting.embedded == sum(1 for _, m in after.values() if m["doc_id"] in oncall_doc)
    assert any("five minutes" in text for text, _ in after.values())
    unchanged_ids = {i for i, (_, m) in before.items() if m["doc_id"] not in oncall_doc}
    assert {i: before[i] for i in unchanged_ids} == {i: after[i] for i in unchanged_ids}

    (docs / "people" / "expenses.md").unlink()
    deleted = ingest(config, embedder=counting).sources["handbook"]
    assert deleted.deleted == 1
    assert not any(m["title"] == "Expense policy" for _, m in snapshot(tmp_path / "store").values())


def test_shrinking_document_leaves_no_orphan_chunks(tmp_path, embedder):
    folder = tmp_path / "docs"
    folder.mkdir()
    long = folder / "long.md"
    long.write_text("# Long\n\n" + "\n\n".join(f"## Part {i}\n\n" + f"Paragraph {i} about travel rules. " * 30
                                             for i in range(6)))
    config = load_config(write_config(tmp_path, docs_source("d", folder)))
    ingest(config, embedder=embedder)
    assert len(snapshot(tmp_path / "store")) > 3
    long.write_text("# Long\n\nNow it is short.\n")
    ingest(config, embedder=embedder)
    assert [text for text, _ in snapshot(tmp_path / "store").values()] == ["Now it is short."]


def test_broken_file_is_reported_and_a_broken_update_keeps_the_old_chunks(tmp_path, embedder):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "good.md").write_text("# Good\n\nThe VPN is called Tunnelbear.\n")
    (folder / "memo.pdf").write_bytes(shared("docs", "unstructured-example-docs", "pdf", "fake-memo.pdf").read_bytes())
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    config = load_config(write_config(tmp_path, docs_source("d", folder)))
    result = ingest(config, embedder=embedder).sources["d"]
    assert (result.added, result.failed) == (2, 1)
    assert result.failures[0][0] == "broken.pdf" and "PDF" in result.failures[0][1]
    before = snapshot(tmp_path / "store")

    (folder / "memo.pdf").write_bytes(b"%PDF-1.4 truncated")  # the memo gets corrupted
    again = ingest(config, embedder=embedder).sources["d"]
    assert again.failed == 2 and again.updated == 0
    assert snapshot(tmp_path / "store") == before  # nothing already in the corpus is lost
    reasons = dict(again.failures)
    assert "not retried" in reasons["broken.pdf"] and "not retried" not in reasons["memo.pdf"]


def test_store_built_with_another_model_is_refused_and_full_rebuilds(tmp_path, embedder):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nSome text.\n")
    config = load_config(write_config(tmp_path, docs_source("d", folder)))
    ingest(config, embedder=embedder)

    class Other(CountingEmbedder):
        name = "another-model"

    with pytest.raises(StoreMismatchError, match="another-model.*corpus ingest --full"):
        ingest(config, embedder=Other(embedder))
    result = ingest(config, full=True, embedder=Other(embedder))
    assert result.sources["d"].added == 1
    client = chromadb.PersistentClient(path=str(tmp_path / "store" / "chroma"),
                                       settings=ChromaSettings(anonymized_telemetry=False))
    assert client.get_collection("corpus").metadata["embedding_model"] == "another-model"


def test_source_removed_from_config_disappears(tmp_path, embedder):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        folder.mkdir()
        (folder / "x.md").write_text(f"# {folder.name}\n\nText of {folder.name}.\n")
    ingest(load_config(write_config(tmp_path, docs_source("a", a) + docs_source("b", b))), embedder=embedder)
    assert {m["source"] for _, m in snapshot(tmp_path / "store").values()} == {"a", "b"}
    result = ingest(load_config(write_config(tmp_path, docs_source("a", a))), embedder=embedder)
    assert result.removed_sources == {"b": 1}
    assert {m["source"] for _, m in snapshot(tmp_path / "store").values()} == {"a"}


def test_a_second_writer_is_refused_clearly(tmp_path, embedder):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nText.\n")
    config = load_config(write_config(tmp_path, docs_source("d", folder)))
    with WriterLock(config.store_path), pytest.raises(StoreLockedError, match=f"pid {os.getpid()}"):
        ingest(config, embedder=embedder)


@pytest.mark.slow
def test_ingest_opens_no_network_connection(tmp_path, embedder, no_network):
    config = load_config(write_config(tmp_path, docs_source("handbook", SAMPLE) + docs_source(
        "examples", shared("docs", "unstructured-example-docs"),
        include=["**/*.docx", "**/*.pptx", "**/*.html", "**/*.eml", "**/*.msg", "**/*.xlsx", "**/*.epub",
                 "**/*.odt", "**/*.rtf", "**/*.txt", "**/*.csv", "**/*.rst", "pdf/reliance.pdf"])))
    result = ingest(config, embedder=embedder)
    assert no_network == []
    assert result.sources["handbook"].added == 11
    assert result.sources["examples"].added > 25


@pytest.mark.slow
def test_no_stored_chunk_exceeds_the_model_limit(tmp_path, embedder):
    config = load_config(write_config(tmp_path, docs_source("handbook", SAMPLE) + docs_source(
        "long", shared("docs", "unstructured-example-docs"),
        include=["norwich-city.txt", "example-with-scripts.html", "pdf/multi-column-2p.pdf", "vodafone.xlsx"])))
    ingest(config, embedder=embedder)
    stored = snapshot(tmp_path / "store").values()
    texts = [f"{m['header']}\n{d}" if m["header"] else d for d, m in stored]
    assert len(texts) > 100
    assert max(embedder.count_tokens(texts)) <= embedder.max_tokens


def test_changed_source_settings_are_applied_to_unchanged_files(tmp_path, embedder):
    """Adding access groups (or a citation template) to a source in corpus.toml must reach the chunks already
    stored: files that did not change are read again under the new settings, once."""
    from server.search import Searcher
    from store.filters import Filters

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "pay.md").write_text("# Pay\n\nSalary bands are reviewed every March by the pay committee.\n")
    first = ingest(load_config(write_config(tmp_path, docs_source("wiki", docs))), embedder=embedder)
    assert first.sources["wiki"].added == 1

    config = load_config(write_config(tmp_path, docs_source("wiki", docs, access=["hr"],
                                                            url="https://wiki.example/{path_noext}")))
    second = ingest(config, embedder=embedder)
    assert second.sources["wiki"].updated == 1 and second.sources["wiki"].unchanged == 0
    searcher = Searcher(config, embedder)
    assert searcher.search("salary bands", filters=Filters(groups=["eng"])) == []
    hits = searcher.search("salary bands", filters=Filters(groups=["hr"]))
    assert hits and hits[0].citation.startswith("https://wiki.example/pay")

    third = ingest(config, embedder=embedder)
    assert third.sources["wiki"].unchanged == 1 and third.sources["wiki"].updated == 0
