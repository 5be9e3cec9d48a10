"""Hybrid ranking: scores fused, and the passage holding the question's words together first in its document."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from corpus.records import Chunk, Citation, Document, Locator
from server import rank
from store import keyword, vectors

# The answer passage shares its document with passages that name the same things, spread out or in passing.
BENEFITS = (
    "Health insurance is offered through FEHB. Benefits include dental and vision plans for your family.",
    "Life insurance and dental care are extra benefits. Ask HR about any of them when you begin here.",
    "Your health matters: the employee assistance program is free. Retirement benefits are explained elsewhere.",
    "New employees pick their health insurance and other benefits within the first 60 days after starting.",
)
OTHERS = ("The office printer is on floor two.", "Travel is booked in Concur before any trip.",
          "Tock is where you record the hours you worked.", "Slack channels for each project start with proj.",
          "Laptops are returned to IT when you leave.", "Parking passes are handed out at the front desk.")
QUESTION = "How long do I have after starting to pick my health insurance and other benefits?"


def _chunk(doc: Document, n: int, text: str) -> Chunk:
    return Chunk(id=f"{doc.id}:{n}", doc_id=doc.id, ordinal=n, text=text, header=doc.title, locator=Locator(),
                 citation=doc.citation)


@pytest.fixture
def db(tmp_path) -> sqlite3.Connection:
    db = sqlite3.connect(tmp_path / "manifest.sqlite")
    db.executescript(keyword.SCHEMA)
    docs = []
    for name, texts in (("benefits", BENEFITS), *((f"other{n}", (t,)) for n, t in enumerate(OTHERS))):
        doc = Document(id=name, source="handbook", kind="docs", native_id=f"{name}.md", title=name.title(),
                       citation=Citation(f"file:///{name}.md", f"{name}.md"), blocks=(), digest=name)
        docs.append((doc, [_chunk(doc, n, text) for n, text in enumerate(texts)]))
    with db:
        keyword.replace_documents(db, docs)
    return db


def _rows(ids: list[str]) -> dict[str, tuple[str, dict]]:
    texts = {f"benefits:{n}": t for n, t in enumerate(BENEFITS)} | {f"other{n}:0": t for n, t in enumerate(OTHERS)}
    return {i: (texts[i], {"doc_id": i.split(":")[0]}) for i in ids}


def _fused() -> list[tuple[str, float]]:
    """As the fusion left it: the answer (benefits:3) fourth, below three passages of its own document, and
    another document between them."""
    order = ["benefits:0", "benefits:1", "other0:0", "benefits:2", "benefits:3", "other2:0", "other5:0"]
    return [(chunk_id, 0.8 - 0.005 * place) for place, chunk_id in enumerate(order)]


def test_the_passage_holding_the_question_together_comes_first_in_its_document(db):
    fused = _fused()
    reranked = rank.rerank(db, keyword.query_terms(db, QUESTION), fused, _rows)
    assert reranked[0][0] == "benefits:3"
    # which documents come first stays the fusion's call: the other document keeps its place, scores their order
    assert reranked[2] == fused[2]
    assert [c for c, _ in reranked if c.startswith("benefits")] == ["benefits:3", "benefits:0", "benefits:1",
                                                                      "benefits:2"]
    assert [s for _, s in reranked] == [s for _, s in fused]


def test_passages_below_the_head_keep_their_places(db, monkeypatch):
    monkeypatch.setattr(rank, "DEPTH", 3)
    fused = _fused()
    assert rank.rerank(db, keyword.query_terms(db, QUESTION), fused, _rows)[3:] == fused[3:]


def test_a_query_without_indexed_words_leaves_the_order(db):
    fused = _fused()
    assert rank.rerank(db, keyword.query_terms(db, "zzzunknown"), fused, _rows) == fused


def test_window_weight_counts_each_term_once_within_the_window():
    weights = {"health": 1.0, "insur": 1.0, "benefit": 0.5}
    found = [(0, "health"), (1, "health"), (30, "insur"), (40, "benefit"), (41, "insur")]
    assert rank.window_weight(weights, found, 12) == 1.5
    assert rank.window_weight(weights, found, 100) == 2.5
    assert rank.window_weight(weights, [], 12) == 0.0


def test_scores_are_fused_not_ranks(db):
    """Far ahead on the dense side and a close second on BM25 beats a close second on the dense side and first
    on BM25; by ranks alone (RRF) the two would tie."""
    db.executescript(vectors.SCHEMA)
    query = np.array([1.0, 0.0], dtype=np.float32)
    cosines = {"other0:0": 0.9, "other1:0": 0.5, "other2:0": 0.45}
    with db:
        vectors.write(db, list(cosines), np.array([[c, (1 - c * c) ** 0.5] for c in cosines.values()]))
    fused = rank.fuse(lambda ids: vectors.stored(db, ids), query, ["other0:0", "other1:0", "other2:0"],
                      [("other1:0", 10.0), ("other0:0", 9.5)])
    assert [c for c, _ in fused] == ["other0:0", "other1:0", "other2:0"]
    # two BM25 scores have no spread worth a z-score: each side is scaled by its best
    assert fused[0][1] == pytest.approx(rank.DENSE * 1.0 + (1 - rank.DENSE) * 0.95)
    assert fused[2][1] == 0.0


def _sides(tmp_path, n: int, shift: float = 0.0, stretch: float = 1.0) -> list[str]:
    """``n`` candidates on each side, the BM25 scores moved by ``shift`` and multiplied by ``stretch``: the order."""
    db = sqlite3.connect(tmp_path / f"sides-{shift}-{stretch}.sqlite")
    db.executescript(keyword.SCHEMA + vectors.SCHEMA)
    rng = np.random.default_rng(7)
    docs = [Document(id=f"d{i}", source="s", kind="docs", native_id=f"d{i}.md", title=f"D{i}",
                     citation=Citation(f"file:///d{i}.md", f"d{i}.md"), blocks=(), digest=f"d{i}") for i in range(n)]
    cosines, bm25 = rng.uniform(0.2, 0.7, n), rng.uniform(2.0, 12.0, n)
    ids = [f"d{i}:0" for i in range(n)]
    with db:
        keyword.replace_documents(db, [(doc, [_chunk(doc, 0, f"passage {i}")]) for i, doc in enumerate(docs)])
        vectors.write(db, ids, np.array([[c, (1 - c * c) ** 0.5] for c in cosines]))
    dense = [ids[i] for i in np.argsort(-cosines)]
    lexical = sorted(((i, (s + shift) * stretch) for i, s in zip(ids, bm25, strict=True)), key=lambda kv: -kv[1])
    fused = rank.fuse(lambda wanted: vectors.stored(db, wanted), np.array([1.0, 0.0], dtype=np.float32), dense,
                      lexical)
    return [c for c, _ in fused]


def test_each_side_counts_in_its_own_spread(tmp_path):
    """A z-score says how far above the query's usual candidate a passage stands, so neither side's scale nor its
    offset (BM25 grows with a query's words) tips the balance; scaled by the best, an offset did."""
    order = _sides(tmp_path, 2 * rank.SAMPLE)
    assert _sides(tmp_path, 2 * rank.SAMPLE, shift=40.0) == order
    assert _sides(tmp_path, 2 * rank.SAMPLE, stretch=7.0) == order


def test_a_store_without_its_own_vectors_is_fused_by_rank(db):
    assert rank.fuse(lambda ids: vectors.stored(db, ids), np.ones(2), ["other0:0"], [("other0:0", 1.0)]) is None
