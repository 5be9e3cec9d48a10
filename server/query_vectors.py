"""Query embeddings for a server: concurrent searches share one forward pass, a repeated question none.

One query through MiniLM costs ~16 ms of CPU, most of it fixed per call; eight queries in one batch
cost ~55 ms. When many sessions search at once, the queries waiting while a batch runs go together
in the next one, so throughput grows with load instead of latency. A search alone waits for no one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Protocol

import numpy as np

MAX_BATCH = 32
CACHE_SIZE = 4096  # query vectors kept (1.5 kB each at 384 dimensions)


class Embeds(Protocol):
    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class QueryVectors:
    """``vector(query)`` from any thread; one background thread runs the model on whatever is waiting."""

    def __init__(self, embedder: Embeds, max_batch: int = MAX_BATCH, cache_size: int = CACHE_SIZE):
        self.embedder = embedder
        self.max_batch = max_batch
        self.cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._waiting: OrderedDict[str, Future] = OrderedDict()  # one future per distinct text
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self.batches = 0  # forward passes run, for benchmarks

    def vector(self, query: str) -> np.ndarray:
        """The normalized embedding of ``query``, shape (dimension,)."""
        with self._lock:
            cached = self._cache.get(query)
            if cached is not None:
                self._cache.move_to_end(query)
                return cached
            future = self._waiting.get(query)
            if future is None:
                future = self._waiting[query] = Future()
                self._start()
                self._wake.notify()
        return future.result()

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="corpus-query-vectors", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._waiting:
                    self._wake.wait()
                texts = list(self._waiting)[:self.max_batch]
                futures = [self._waiting.pop(text) for text in texts]
            try:
                vectors = self.embedder.embed(texts)
            except BaseException as exc:  # every waiting search gets the error, the thread lives on
                for future in futures:
                    future.set_exception(exc)
                continue
            self.batches += 1
            vectors.setflags(write=False)  # cached and shared between searches
            with self._lock:
                for text, vector in zip(texts, vectors, strict=True):
                    self._cache[text] = vector
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            for future, vector in zip(futures, vectors, strict=True):
                future.set_result(vector)
