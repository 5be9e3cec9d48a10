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
from ingest.chunker import Chunker
from ingest.masking import mask_document
from ingest.redact import redact

_DONE = object()


@dataclass(frozen=True)
class Loaded:
    item: Item
    document: Document | None
    chunks: list[Chunk]
    error: str | None = None
    redacted: int = 0  # distinct secret values masked in the document


Refine = Callable[[Document, list[Chunk]], list[Chunk]]


def load_in_background(connector: Connector, chunker: Chunker, items: Sequence[Item],
                       depth: int = 32, refine: Refine | None = None) -> Iterator[Loaded]:
    """Yield each item parsed and chunked, in order; an unreadable item comes with its reason.

    ``refine`` runs on each document's chunks on this thread too (contextual chunks call Claude there).
    """
    results: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

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
                if not put(_load(connector, chunker, item, refine)):
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
            yield value
    finally:
        stop.set()
        thread.join(timeout=5)


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
