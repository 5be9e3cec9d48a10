"""Fit server/relevance.py's fixed coefficients on the development questions, and show what the verdict's
thresholds would flag.

Reads the JSON lines `bench/questions_eval.py --split dev --signals FILE` writes (each dev question's limit-10
hits with their similarity, coverage and whether they hold the answer span), fits a logistic model of "this hit
holds the answer" on the two signals (Newton's method, a little L2 so a separable set stays finite), and prints
the coefficients to write into server/relevance.py. Then it prints, for a range of cuts on the verdict's
evidence (closest similarity + WORDS_WEIGHT x words held, as server/relevance.py has them), how many
out-of-corpus and answerable questions the verdict would call "unlikely" with that cut as POSSIBLE: below it, or
below LIKELY when a name the question asks about is in none of the first hits (a step lower).

    python bench/relevance_fit.py FILE
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from server import relevance  # noqa: E402

L2 = 0.01
OUT = "out of corpus"


def fit(x: np.ndarray, y: np.ndarray, steps: int = 50) -> np.ndarray:
    """Logistic regression weights (bias first) by Newton's method."""
    design = np.hstack([np.ones((len(x), 1)), x])
    weights = np.zeros(design.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-design @ weights))
        gradient = design.T @ (p - y) + L2 * weights
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + L2 * np.eye(len(weights))
        weights -= np.linalg.solve(hessian, gradient)
    return weights


def main() -> int:
    questions = [json.loads(line) for line in Path(sys.argv[1]).read_text().splitlines() if line.strip()]
    hits = [h for q in questions for h in q["hits"]]
    x = np.array([[h["similarity"], h["coverage"]] for h in hits])
    y = np.array([1.0 if h["holds"] else 0.0 for h in hits])
    bias, similarity, coverage = fit(x, y)
    print(f"{len(questions)} dev questions, {len(hits)} hits, {int(y.sum())} holding the answer span")
    print(f"fitted: BIAS = {bias:.2f}, SIMILARITY_WEIGHT = {similarity:.2f}, COVERAGE_WEIGHT = {coverage:.2f}")
    best: dict[bool, list[tuple[float, bool]]] = {True: [], False: []}  # (evidence, a name unmatched)
    for q in questions:
        best[q["kind"] == OUT].append((q["closest_similarity"] + relevance.WORDS_WEIGHT * q["words_held"],
                                       bool(q["unmatched_names"])))
    print(f"\nquestions called unlikely: evidence (closest similarity + {relevance.WORDS_WEIGHT} x words held, first "
          f"{relevance.VERDICT_DEPTH} hits) below the cut, or below LIKELY with a name no hit holds "
          f"(server/relevance.py: POSSIBLE = {relevance.POSSIBLE}, LIKELY = {relevance.LIKELY}):")
    print(f"{'cut':>6}{'out of corpus':>16}{'answerable':>13}")
    for cut in (0.7, 0.75, 0.8, 0.82, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1):
        out = sum(1 for b, named in best[True] if b < cut or named and b < relevance.LIKELY)
        answerable = sum(1 for b, named in best[False] if b < cut or named and b < relevance.LIKELY)
        print(f"{cut:>6.2f}{f'{out}/{len(best[True])}':>16}{f'{answerable}/{len(best[False])}':>13}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
