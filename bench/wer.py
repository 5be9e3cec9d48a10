"""Word error rate, for transcription tests and the benchmark: word-level Levenshtein over normalised text."""

from __future__ import annotations

import re


def words(text: str) -> list[str]:
    """Lower case, punctuation dropped ("Americans," and "americans" are the same word)."""
    return re.findall(r"[\w']+", text.lower().replace("’", "'"))


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words."""
    ref, hyp = words(reference), words(hypothesis)
    if not ref:
        return float(bool(hyp))
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        current = [i]
        for j, h in enumerate(hyp, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1] / len(ref)
