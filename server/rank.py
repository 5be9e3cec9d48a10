"""Hybrid ranking: the two retrievers' scores fused, then each document's passages ordered by their evidence.

Fusion. Reciprocal rank fusion knows only where each retriever put a passage; how much better the first was than
the tenth is lost. So the scores themselves are fused: the query's cosine with each candidate's stored vector and
its BM25, each as a z-score over that retriever's own candidates (how far above that query's usual candidate it
stands: a passage far ahead of the rest keeps that lead, where scaling by the best squashed the others together),
weighted ``DENSE`` and ``1 - DENSE``; a candidate one side did not return takes that side's lowest score. This
is distribution-based score fusion, ranked alike. A side with fewer than ``SAMPLE`` scores (a rare word only a
few passages hold) has no spread to speak of, and its one match would sit at its mean: then the cosine is
min-max scaled and BM25 divided by the best, a passage the keyword side missed scoring 0 there.

SciFact nDCG@10, halves 1 / 2: 0.709 / 0.716 with RRF, 0.726 / 0.735 with the scores scaled by their best, 0.732 /
0.736 with z-scores; development questions with the answer in the first five hits (grouped by document, see
``server.search``): 88% scaled by the best, 93% with z-scores. Tuned on SciFact half 1 and the development split.

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

DENSE = 0.5  # share of the dense side in the fusion (SciFact half 1: 0.4-0.5 alike; dev top 5 best at 0.5)
SAMPLE = 10  # scores a side needs for its spread to mean something; with fewer, each side is scaled by its best
DEPTH = 30  # fused passages whose order within their document is revisited
WINDOW = 12  # tokens: about a sentence
EVIDENCE = 0.1  # weight of the evidence beside the fused score (0 to 1)

Rows = Callable[[list[str]], dict[str, tuple[str, dict]]]


def fuse(stored: Callable[[list[str]], Stored], query_vector: np.ndarray, dense: list[str],
         lexical: list[tuple[str, float]]) -> list[tuple[str, float]] | None:
    """Every candidate of either side with ``DENSE`` x its cosine's z-score + ``1 - DENSE`` x its BM25's (each
    scaled by its side's best when a side has fewer than ``SAMPLE``), best first; None when none has a stored
    vector (the caller fuses ranks instead, as for a store without its own copy of the vectors). ``stored`` gives
    chunks' own vectors."""
    ids = list(dict.fromkeys([*dense, *(chunk_id for chunk_id, _ in lexical)]))
    found = stored(ids) if ids else None
    if found is None or not found.ids:
        return None
    # one product for all candidates: a call per candidate gave up the GIL and queued for it again a hundred times
    cosine = dict(zip(found.ids, np.einsum("ij,j->i", found.vectors, np.asarray(query_vector, dtype=np.float32))
                      .tolist(), strict=True))
    near = np.array([cosine[chunk_id] for chunk_id in dense if chunk_id in cosine])
    if not near.size:
        return None
    bm25 = dict(lexical)
    matched = np.array(list(bm25.values()) or [0.0])
    if min(len(near), len(bm25)) >= SAMPLE:
        dense_scale, lexical_scale, lexical_low = _standard(near), _standard(matched), float(matched.min())
    else:  # a lone exact match would be its side's mean, not ahead of it: each side over its best instead
        dense_scale, lexical_scale, lexical_low = _spread(near), _over_best(matched), 0.0
    low_dense, low_lexical = dense_scale(float(near.min())), lexical_scale(lexical_low)
    scores = {chunk_id: DENSE * (dense_scale(cosine[chunk_id]) if chunk_id in cosine else low_dense)
              + (1 - DENSE) * (lexical_scale(bm25[chunk_id]) if chunk_id in bm25 else low_lexical) for chunk_id in ids}
    return sorted(scores.items(), key=lambda kv: kv[1], reverse=True)


def _standard(values: np.ndarray) -> Callable[[float], float]:
    """A score as standard deviations above the mean of ``values`` (a spread of 1 when they are all alike)."""
    mean, spread = float(values.mean()), float(values.std()) or 1.0
    return lambda value: (value - mean) / spread


def _spread(values: np.ndarray) -> Callable[[float], float]:
    """A score as its place between the lowest and the highest of ``values`` (0 to 1)."""
    low, span = float(values.min()), float(values.max() - values.min()) or 1.0
    return lambda value: (value - low) / span


def _over_best(values: np.ndarray) -> Callable[[float], float]:
    best = float(values.max()) or 1.0
    return lambda value: value / best


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
