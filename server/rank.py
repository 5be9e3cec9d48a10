"""Hybrid ranking: the two retrievers' scores fused, then each document's passages ordered by their evidence.

Fusion. Reciprocal rank fusion knows only where each retriever put a passage; how much better the first was than
the tenth is lost. So the scores themselves are fused: the query's cosine with each candidate's stored vector,
min-max scaled over the dense candidates, and BM25 over the best BM25, weighted ``DENSE`` and ``1 - DENSE``
(SciFact half 1: nDCG@10 0.709 with RRF, 0.726 so).

Passages. Both retrievers judge a chunk whole, so several passages of the right document come out close
together and the one that answers is often below its neighbours. It is the one holding the question's rarer
words near each other, in one sentence, where the others hold them spread out or hold only the common ones. So
the first ``DEPTH`` fused passages are tokenised as the keyword index does; each gains ``EVIDENCE`` times the
share of the query's idf its best ``WINDOW`` tokens hold (each term once), and each document's passages are put
back in the places its passages held, best first: which documents come first stays the fusion's call.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

import numpy as np

from store import keyword, postings
from store.vectors import Stored

DENSE = 0.4  # share of the dense side in the fusion (SciFact half 1: 0.3-0.45 alike, 0.709 → 0.726)
DEPTH = 30  # fused passages whose order within their document is revisited
WINDOW = 12  # tokens: about a sentence
EVIDENCE = 0.1  # weight of the evidence beside the fused score (0 to 1)

Rows = Callable[[list[str]], dict[str, tuple[str, dict]]]


def fuse(stored: Callable[[list[str]], Stored], query_vector: np.ndarray, dense: list[str],
         lexical: list[tuple[str, float]]) -> list[tuple[str, float]] | None:
    """Every candidate of either side with ``DENSE`` x its scaled cosine + ``1 - DENSE`` x its share of the best
    BM25, best first; None when none has a stored vector (the caller fuses ranks instead, as for a store
    without its own copy of the vectors). ``stored`` gives chunks' own vectors."""
    ids = list(dict.fromkeys([*dense, *(chunk_id for chunk_id, _ in lexical)]))
    found = stored(ids) if ids else None
    if found is None or not found.ids:
        return None
    # one product for all candidates: a call per candidate gave up the GIL and queued for it again a hundred times
    cosine = dict(zip(found.ids, np.einsum("ij,j->i", found.vectors, np.asarray(query_vector, dtype=np.float32))
                      .tolist(), strict=True))
    near = [cosine[chunk_id] for chunk_id in dense if chunk_id in cosine]
    if not near:
        return None
    low, span = min(near), (max(near) - min(near)) or 1.0
    best = max((score for _, score in lexical), default=0.0) or 1.0
    bm25 = dict(lexical)
    scores = {chunk_id: DENSE * max(cosine.get(chunk_id, low) - low, 0.0) / span
              + (1 - DENSE) * bm25.get(chunk_id, 0.0) / best for chunk_id in ids}
    return sorted(scores.items(), key=lambda kv: kv[1], reverse=True)


def rerank(db: sqlite3.Connection, terms: Sequence[keyword.QueryTerm], fused: list[tuple[str, float]],
           rows: Rows) -> list[tuple[str, float]]:
    """``fused`` with the passages of each document among the first ``DEPTH`` reordered by fused score plus
    evidence, in the places that document's passages held; ``rows`` gives chunk ids' (text, metadata)."""
    head = fused[:DEPTH]
    weights = keyword.term_weights(terms)
    if len(head) < 2 or not weights:
        return fused
    ids = [chunk_id for chunk_id, _ in head]
    found = rows(ids)
    where = postings.positions(db, [found[i][0] if i in found else "" for i in ids], list(weights))
    total = sum(weights.values())
    scored = sorted(((score + EVIDENCE * window_weight(weights, at, WINDOW) / total, chunk_id)
                     for (chunk_id, score), at in zip(head, where, strict=True)), key=lambda sc: -sc[0])
    document = {chunk_id: found[chunk_id][1].get("doc_id", chunk_id) if chunk_id in found else chunk_id
                for chunk_id in ids}
    queues: dict[str, list[str]] = {}
    for _, chunk_id in scored:
        queues.setdefault(document[chunk_id], []).append(chunk_id)
    return [(queues[document[chunk_id]].pop(0), score) for chunk_id, score in head] + fused[DEPTH:]


def window_weight(weights: dict[str, float], found: Sequence[tuple[int, str]], width: int) -> float:
    """The most weight of distinct terms that any ``width`` consecutive tokens hold; ``found`` in token order."""
    held: dict[str, int] = {}
    inside = best = 0.0
    start = 0
    for offset, term in found:
        held[term] = held.get(term, 0) + 1
        if held[term] == 1:
            inside += weights[term]
        while offset - found[start][0] >= width:
            gone = found[start][1]
            held[gone] -= 1
            if not held[gone]:
                inside -= weights[gone]
            start += 1
        best = max(best, inside)
    return best
