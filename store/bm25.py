"""FTS5's bm25() over our postings, top-k only: rows that cannot enter the top k are never scored in full.

The score of a row for an OR of terms is the sum of each term's score alone (FTS5's bm25() is built that
way), and a term can add at most ``idf × (k1 + 1)`` to any row. So terms go from the highest such bound
(the rarest) down and are scored over all their rows until the bounds of the terms left sum to no more
than the k-th best score so far: a row that holds none of the terms scored by then cannot reach the top k
(MaxScore). The terms left only add to the rows still in contention, found by binary search in their
arrays, and each one shrinks the bound left, which drops more rows from contention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

K1, B = 1.2, 0.75  # FTS5's constants
LOOKUP_SHARE = 4  # contenders are looked up in a term's rows when they are fewer than 1/4 of them


@dataclass(frozen=True)
class Term:
    """One query term's live rows (ascending) and either their term frequencies or, for an FTS5 phrase,
    their scores already; ``weight`` is idf times how many query words stand for the term."""

    rowids: np.ndarray
    weight: float
    tfs: np.ndarray | None = None
    scores: np.ndarray | None = None

    @property
    def bound(self) -> float:
        if self.scores is not None:
            return float(self.scores.max()) if len(self.scores) else 0.0
        return self.weight * (K1 + 1)

    def score(self, at: np.ndarray | slice, norm: np.ndarray) -> np.ndarray:
        """The term's score in its rows at positions ``at``; ``norm`` is ``k1 (1 - b + b dl / avgdl)`` by rowid."""
        if self.scores is not None:
            return self.scores[at]
        tf = self.tfs[at].astype(np.float64)
        return self.weight * (tf * (K1 + 1) / (tf + norm[self.rowids[at]]))


def idf(rows: int, holding: int) -> float:
    """FTS5's: never zero or below, so a term in most rows still counts a little."""
    value = math.log((rows - holding + 0.5) / (holding + 0.5))
    return value if value > 0 else 1e-6


def norms(lengths: np.ndarray, average: float) -> np.ndarray:
    return K1 * (1 - B + B * lengths / average)


def top(terms: list[Term], norm: np.ndarray, depth: int,
        allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``depth`` best rows (rowids, scores), best first, among those ``allowed`` (a mask by rowid)."""
    if not terms:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    bounds, terms = zip(*sorted(((t.bound, t) for t in terms), key=lambda bt: bt[0], reverse=True), strict=True)
    scores = np.zeros(len(norm))
    seen = np.zeros(len(norm), dtype=bool)
    contenders: np.ndarray | None = None
    for i, term in enumerate(terms):
        left = sum(bounds[i + 1:])  # what the terms after this one could still add to any row
        if contenders is None:  # still scoring whole terms
            at = slice(None) if allowed is None else np.flatnonzero(allowed[term.rowids])
            scores[term.rowids[at]] += term.score(at, norm)
            seen[term.rowids[at]] = True
            if i + 1 < len(terms):
                in_play = np.flatnonzero(seen)
                if len(in_play) >= depth:
                    cut = _kth(scores[in_play], depth)
                    if left <= cut:
                        contenders = in_play[scores[in_play] + left >= cut]
        elif len(contenders) * LOOKUP_SHARE > len(term.rowids):  # scoring all its rows is cheaper than looking up
            scores[term.rowids] += term.score(slice(None), norm)  # rows out of contention no longer matter
        else:
            at = np.minimum(np.searchsorted(term.rowids, contenders), len(term.rowids) - 1)
            holds = term.rowids[at] == contenders
            scores[contenders[holds]] += term.score(at[holds], norm)
            cut = _kth(scores[contenders], depth)
            contenders = contenders[scores[contenders] + left >= cut]
    if contenders is None:
        contenders = np.flatnonzero(seen)
    if len(contenders) > depth:
        contenders = contenders[np.argpartition(-scores[contenders], depth - 1)[:depth]]
    best = contenders[np.argsort(-scores[contenders], kind="stable")]
    return best, scores[best]


def _kth(values: np.ndarray, k: int) -> float:
    """The k-th largest of ``values`` (at least k of them)."""
    return float(np.partition(values, len(values) - k)[len(values) - k])
