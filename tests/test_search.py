"""The search API on a real store: hybrid ranking, filters inside retrieval, duplicates, access, fetch."""

from __future__ import annotations

import shutil
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from connectors import load_config
from corpus.errors import CorpusError
from ingest.pipeline import ingest
from server.search import Searcher
from store import replica
from store.filters import PUBLIC, Filters
from tests.conftest import REPO, SAMPLE, docs_source, write_config


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory, embedder) -> Path:
    folder = tmp_path_factory.mktemp("search")
    docs = folder / "docs"
    shutil.copytree(SAMPLE, docs)
    (folder / "hr").mkdir()
    (folder / "hr" / "salaries.md").write_text("# Salary bands\n\nEngineering salary band L3 is 70-85k EUR.\n")
    copies = folder / "copies"
    copies.mkdir()
    text = "# Printer\n\nThe office printer on floor 2 is called Gutenberg; its queue is printers-berlin.\n"
    (copies / "printer.md").write_text(text)
    (copies / "printer-copy.md").write_text(text)
    write_config(folder, docs_source("handbook", docs) + docs_source("hr", folder / "hr", access=["hr"])
                 + docs_source("copies", copies))
    ingest(load_config(folder / "corpus.toml"), embedder=embedder)
    return folder


@pytest.fixture(scope="module")
def searcher(corpus_dir, embedder) -> Searcher:
    return Searcher(load_config(corpus_dir / "corpus.toml"), embedder)


def _queries() -> list[tuple[str, str]]:
    lines = (REPO / "sample" / "queries.txt").read_text().splitlines()
    return [tuple(line.split("\t")) for line in lines if line.strip()]


@pytest.mark.parametrize("query,answer", _queries())
def test_hybrid_search_puts_the_answering_document_first(searcher, query, answer):
    hits = searcher.search(query, limit=3)
    assert hits[0].citation_label.startswith(f"handbook/{answer}"), [h.citation_label for h in hits]
    assert hits[0].citation.startswith("file://")


def test_each_retriever_alone_and_fused(searcher):
    # an exact token only keyword search can be sure of; a paraphrase only the dense side understands
    keyword = searcher.search("nwctl", limit=3, mode="keyword")
    assert keyword and "nwctl" in keyword[0].text
    dense = searcher.search("who do I ask when my computer is stolen", limit=3, mode="dense")
    assert "laptop-and-accounts" in dense[0].citation_label
    assert searcher.search("nwctl", limit=3)[0].id == keyword[0].id


def test_filters_apply_inside_retrieval(searcher):
    assert searcher.search("meal limit", filters=Filters(kinds=["slack"])) == []
    only = searcher.search("meal limit", limit=20, filters=Filters(sources=["copies"]))
    assert only and {h.source for h in only} == {"copies"}
    recent = searcher.search("policy", limit=20, filters=Filters(after=datetime(2026, 1, 1)))
    assert recent and all(h.date >= "2026-01-01" for h in recent)
    older = searcher.search("policy", limit=20, filters=Filters(before=datetime(2026, 1, 1)))
    assert older and all(h.date < "2026-01-01" for h in older)
    by_owner = searcher.search("rules", limit=20, filters=Filters(people=["tomás herrera"]))
    assert by_owner and all("Tomás Herrera" in h.people for h in by_owner)
    # the filter holds inside retrieval: a rare match far down the unfiltered ranking is still found
    assert searcher.search("salary band", filters=Filters(sources=["handbook"])) != []


def test_near_duplicates_collapse_into_one_hit(searcher):
    hits = searcher.search("office printer queue name", limit=5)
    printers = [h for h in hits if "printer" in h.citation_label]
    assert len(printers) == 1
    assert len(printers[0].duplicates) == 1 and "printer" in printers[0].duplicates[0]


def test_access_groups_hide_restricted_sources(searcher):
    def sources(groups):
        return {h.source for h in searcher.search("engineering salary band", limit=20, filters=Filters(groups=groups))}

    assert "hr" in sources(None)  # local use reads everything
    assert "hr" in sources(["hr"])
    assert "hr" not in sources(["eng"]) and "hr" not in sources([])
    assert "hr" in {h.source for h in searcher.search("salary", mode="keyword")}
    assert all(h.source != "hr" for h in searcher.search("salary", mode="keyword", filters=Filters(groups=["eng"])))


def test_fetch_a_document_and_a_chunk_with_neighbours(searcher):
    hit = searcher.search("how does the on-call hand-off work?", limit=1)[0]
    around = searcher.fetch(hit.id, neighbours=1)
    assert hit.text in around.text and around.first_chunk <= int(hit.id.split(":")[1]) <= around.last_chunk
    whole = searcher.fetch(hit.doc_id)
    assert whole.title == hit.title and hit.text in whole.text and whole.pages == 1
    # overlapping sentences of split chunks appear once in the whole document
    assert whole.text.count("The hand-off happens every Monday at 10:00") == 1
    with pytest.raises(CorpusError, match="no document or chunk"):
        searcher.fetch("dnothere")
    with pytest.raises(CorpusError, match="page 9 does not exist"):
        searcher.fetch(hit.doc_id, page=9)
    restricted = searcher.search("salary band", limit=1, filters=Filters(sources=["hr"]))[0]
    with pytest.raises(CorpusError):
        searcher.fetch(restricted.doc_id, filters=Filters(groups=["eng"]))


def test_empty_query_is_an_error_that_says_what_to_do(searcher):
    with pytest.raises(CorpusError, match="query is empty"):
        searcher.search("   ")


def test_an_unknown_kind_names_the_kinds_a_user_can_ask_for(searcher):
    with pytest.raises(CorpusError, match="unknown kind 'bier'; the kinds are: docs, meetings, slack$"):
        searcher.search("expenses", filters=Filters(kinds=("bier",)))


def test_a_running_searcher_sees_what_a_later_ingest_wrote(tmp_path, embedder, monkeypatch):
    monkeypatch.setattr(replica, "CHECK_EVERY", 0.0)
    monkeypatch.setattr(replica, "SWAP_WAIT", 60.0)  # the search that notices it waits for the newer generation
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Parking\n\nVisitors park in bay 7.\n")
    config = load_config(write_config(tmp_path, docs_source("d", docs)))
    ingest(config, embedder=embedder)
    searcher = Searcher(config, embedder)
    assert "bay 7" in searcher.search("where do visitors park")[0].text
    (docs / "b.md").write_text("# Bikes\n\nBikes go in the basement cage, code 4471.\n")
    ingest(config, embedder=embedder)
    time.sleep(0.01)
    assert "4471" in searcher.search("bike cage code")[0].text


def brute_force(searcher: Searcher, query: str, filters: Filters) -> list[tuple[str, str]]:
    """(chunk id, citation) of every stored chunk the filters pass, by exact cosine to the query, best first: the
    filters read from Chroma's metadata here, not from our SQL, and every stored vector compared."""
    with searcher.replica.reading() as snapshot:
        stored = snapshot.store.collection.get(include=["embeddings", "metadatas"])
    allowed = None if filters.groups is None else {PUBLIC, *filters.groups}

    def passes(meta: dict) -> bool:
        updated = meta.get("updated")
        return ((not filters.kinds or meta["kind"] in filters.kinds)
                and (not filters.sources or meta["source"] in filters.sources)
                and (not filters.people or bool({p.lower() for p in filters.people} & set(meta.get("people_key", []))))
                and (filters.after is None or (updated is not None and updated >= filters.after.timestamp()))
                and (filters.before is None or (updated is not None and updated < filters.before.timestamp()))
                and (allowed is None or bool(allowed & set(meta["access"]))))

    vector = searcher.embedder.embed([query])[0]
    scored = [(-float(np.dot(v, vector) / np.linalg.norm(v) / np.linalg.norm(vector)), chunk_id, meta["citation_uri"])
              for chunk_id, v, meta in zip(stored["ids"], stored["embeddings"], stored["metadatas"], strict=True)
              if passes(meta)]
    return [(chunk_id, uri) for _, chunk_id, uri in sorted(scored)]


@pytest.mark.parametrize("filters", [
    Filters(groups=["eng"]), Filters(groups=["hr"], sources=["hr", "copies"]), Filters(groups=[]),
    Filters(after=datetime(2025, 12, 1, tzinfo=UTC)), Filters(before=datetime(2026, 1, 1, tzinfo=UTC)),
    Filters(kinds=["docs"], sources=["handbook"]), Filters(sources=["copies"]), Filters(people=["Tomás Herrera"]),
    Filters(people=["tomás herrera"], after=datetime(2025, 1, 1, tzinfo=UTC), groups=["eng"]),
])
@pytest.mark.parametrize("path", ["deeper-unfiltered-list", "exact-over-passing", "in-memory", "in-memory-passing"])
def test_filtered_dense_hits_are_the_brute_force_ranking(searcher, monkeypatch, filters, path):
    from server import search as search_module
    from store import vectors

    # the deeper unfiltered list checked against the filters always, or never (the passing chunks scored from the
    # table, or from memory when the store is too large to score whole), or every vector of this small store
    # scored in memory: each way, the same hits
    deep = path == "deeper-unfiltered-list"
    monkeypatch.setattr(vectors, "IN_MEMORY_BYTES", 10**9 if path.startswith("in-memory") else 0)
    monkeypatch.setattr(vectors, "EXACT_BYTES", 0 if path == "in-memory-passing" else 10**9)
    with searcher.replica.reading() as snapshot:  # loaded again under this test's limit, put back after it
        monkeypatch.setattr(snapshot, "_matrix", replica._UNLOADED)
    monkeypatch.setattr(search_module, "DEEP_CANDIDATE_COST", 0 if deep else 10**9)
    monkeypatch.setattr(search_module, "MAX_DEPTH", 10**6 if deep else search_module.MAX_DEPTH)
    monkeypatch.setattr(search_module, "PASSAGES", 1)  # a hit a passage, in the dense side's order
    query = "rules for expenses and laptops"
    hits = searcher.search(query, limit=10, filters=filters, mode="dense")
    folded = {uri for hit in hits for uri in hit.duplicates}  # near-duplicates collapse into the hit above them
    expected = [chunk_id for chunk_id, uri in brute_force(searcher, query, filters) if uri not in folded]
    assert hits and [h.id for h in hits] == expected[:10]


def test_a_new_threads_first_search_loads_the_in_memory_vectors(searcher, monkeypatch):
    """A thread with no connection of its own yet opens one while loading the vectors (it once deadlocked)."""
    with searcher.replica.reading() as snapshot:
        monkeypatch.setattr(snapshot, "_matrix", replica._UNLOADED)
    found: list = []
    thread = threading.Thread(target=lambda: found.append(searcher.search("how does the on-call hand-off work?", 3)),
                              daemon=True)  # a hung search must fail the test, not hang it
    thread.start()
    thread.join(timeout=120)
    assert found and found[0]
