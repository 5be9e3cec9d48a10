"""Query vectors shared between concurrent searches: the same vectors as embedding each query alone."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from server.query_vectors import QueryVectors

QUESTIONS = [
    "how do I submit an expense report?", "who approves vacation requests?", "what is the on-call hand-off?",
    "where are the brand guidelines?", "how do I book a meeting room?", "payroll contact",
    "security incident checklist", "how long do we keep customer data?",
]


class Gated:
    """The real embedder, but its first batch waits until every question has been asked."""

    def __init__(self, embedder, asked: threading.Event):
        self.embedder = embedder
        self.asked = asked
        self.calls: list[list[str]] = []

    def embed(self, texts):
        self.calls.append(list(texts))
        self.asked.wait(timeout=30)
        return self.embedder.embed(texts)


def test_concurrent_queries_share_batches_and_match_single_embeddings(embedder):
    asked = threading.Event()
    gated = Gated(embedder, asked)
    vectors = QueryVectors(gated)
    with ThreadPoolExecutor(len(QUESTIONS)) as pool:
        futures = [pool.submit(vectors.vector, q) for q in QUESTIONS]
        for _ in range(3000):  # until every question is in a batch or waiting for one
            if len(vectors._waiting) + sum(map(len, gated.calls)) == len(QUESTIONS):
                break
            threading.Event().wait(0.01)
        asked.set()
        got = [f.result(timeout=60) for f in futures]
    assert len(gated.calls) < len(QUESTIONS)  # at least one batch held more than one question
    alone = embedder.embed(QUESTIONS)
    for question, vector, single in zip(QUESTIONS, got, alone, strict=True):
        assert vector.shape == single.shape
        assert np.allclose(vector, single, atol=1e-5), question


def test_a_repeated_question_is_not_embedded_again_unless_the_cache_is_off(embedder):
    asked = threading.Event()
    asked.set()
    for size, expected_calls in ((16, 1), (0, 2)):
        gated = Gated(embedder, asked)
        vectors = QueryVectors(gated, cache_size=size)
        first = vectors.vector(QUESTIONS[0])
        second = vectors.vector(QUESTIONS[0])
        assert np.array_equal(first, second)
        assert len(gated.calls) == expected_calls
        with pytest.raises(ValueError):
            first[0] = 1.0  # a cached vector is shared: nobody may change it


def test_an_error_reaches_every_waiting_search_and_the_next_one_still_works(embedder):
    class FailsOnce:
        failed = False

        def embed(self, texts):
            if not self.failed:
                self.failed = True
                raise RuntimeError("model exploded")
            return embedder.embed(texts)

    vectors = QueryVectors(FailsOnce())
    with pytest.raises(RuntimeError, match="model exploded"):
        vectors.vector(QUESTIONS[0])
    assert vectors.vector(QUESTIONS[0]).shape == (384,)
