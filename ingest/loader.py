"""Parse and chunk documents on a background thread while the main thread embeds.

Parsing is Python work and embedding is mostly native code that releases the GIL, so running
them side by side keeps both cores busy. The queue is bounded: memory does not grow with the
number of documents.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from connectors.base import Connector
from corpus.errors import ItemError
from corpus.records import Chunk, Document, Item
from corpus.redact import redact
from ingest.chunker import Chunker
from ingest.masking import mask_document

_DONE = object()
QUEUED_CHARS = 64_000_000  # a few hundred MB of Python strings and chunk records at most


@dataclass(frozen=True)
class Loaded:
    item: Item
    document: Document | None
    chunks: list[Chunk]
    error: str | None = None
    redacted: int = 0  # distinct secret values masked in the document


Refine = Callable[[Document, list[Chunk]], list[Chunk]]


def load_in_background(connector: Connector, chunker: Chunker, items: Sequence[Item],
                       depth: int = 32, refine: Refine | None = None,
                       queued_chars: int = QUEUED_CHARS) -> Iterator[Loaded]:
    """Yield each item parsed and chunked, in order; an unreadable item comes with its reason.

    At most ``depth`` documents and about ``queued_chars`` characters of chunk text wait to be taken
    (a document larger than that still passes, alone), so a folder of large files cannot pile up.

    ``refine`` runs on each document's chunks on this thread too (contextual chunks call Claude there).
    """
    results: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    budget = _TextBudget(queued_chars)

    def put(value) -> bool:
        while not stop.is_set():
            try:
                results.put(value, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                loaded = _load(connector, chunker, item, refine)
                if not budget.take(_size(loaded), stop) or not put(loaded):
                    return
        except BaseException as exc:  # a bug, not a bad file: surface it in the caller's thread
            put(exc)
            return
        put(_DONE)

    thread = threading.Thread(target=work, name="corpus-loader", daemon=True)
    thread.start()
    try:
        while True:
            value = results.get()
            if value is _DONE:
                return
            if isinstance(value, BaseException):
                raise value
            budget.give(_size(value))
            yield value
    finally:
        stop.set()
        thread.join(timeout=5)


class _TextBudget:
    """Characters of chunk text loaded but not yet taken by the consumer."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self.changed = threading.Condition()

    def take(self, size: int, stop: threading.Event) -> bool:
        with self.changed:
            while self.used and self.used + size > self.limit:
                if stop.is_set():
                    return False
                self.changed.wait(timeout=0.2)
            self.used += size
            return True

    def give(self, size: int) -> None:
        with self.changed:
            self.used -= size
            self.changed.notify_all()


def _size(loaded: Loaded) -> int:
    return sum(len(c.text) for c in loaded.chunks)


def _load(connector: Connector, chunker: Chunker, item: Item, refine: Refine | None) -> Loaded:
    try:
        document, redacted = mask_document(connector.load(item))
        chunks = chunker.chunk(document)
    except ItemError as exc:
        return Loaded(item, None, [], redact(str(exc)))
    except Exception as exc:  # one item's unforeseen failure (a read error, a parser bug) must not stop the run
        reason = " ".join(str(exc).split())[:160]
        return Loaded(item, None, [], redact(f"cannot read: {type(exc).__name__}: {reason}"))
    if not chunks:
        return Loaded(item, None, [], "no text found")
    return Loaded(item, document, refine(document, chunks) if refine else chunks, redacted=redacted)
