"""The one way to change the store: under the writer lock, manifest and vectors open, published at the end.

`corpus ingest` and `corpus dream` both write through ``writing``: a second writer is refused with
who holds the lock, a change is marked unpublished before it is made (so a killed run is published
by the next), and what the block changed becomes a new generation for readers when it ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from corpus.config import Config
from store import keyword, timeline, vectors
from store.chroma import ChunkStore, ModelInfo, chroma_metadatas, chroma_vectors, open_client
from store.lock import WriterLock
from store.manifest import Manifest
from store.publish import mark_unpublished, needs_publish, publish


class Writer:
    """The open store of one writing run."""

    def __init__(self, config: Config, store: ChunkStore, manifest: Manifest):
        self.config = config
        self.store = store
        self.manifest = manifest
        self._marked: bool | None = None  # what the unpublished mark covers: the vectors too (True) or not

    def changing(self, vectors: bool = True) -> None:
        """Call before any change to the store or the manifest; ``vectors=False`` when only the manifest changes,
        so the publish links the vectors it already has instead of copying them."""
        if self._marked is None or (vectors and not self._marked):
            mark_unpublished(self.config.store_path, vectors)
            self._marked = vectors

    def publish(self) -> None:
        """A new generation for readers, when anything changed since the last one."""
        if needs_publish(self.config.store_path):
            publish(self.config.store_path, with_vectors=not self.config.corpus.url)


@contextmanager
def writing(config: Config, model: ModelInfo, *, rebuild: bool = False, create: bool = True,
            note: Callable[[str], None] = print) -> Iterator[Writer]:
    """The store open for writing; ``rebuild`` starts it empty (a corrupt manifest is set aside first)."""
    store_path = config.store_path
    with WriterLock(store_path):
        client = open_client(store_path, config.corpus.url)
        path = store_path / "manifest.sqlite"
        manifest = Manifest.set_aside_if_corrupt(path, note) if rebuild else Manifest(path)
        try:
            writer = Writer(config, ChunkStore(client, model, create=create, rebuild=rebuild), manifest)
            if rebuild:
                writer.changing()
                manifest.drop_source(None)
            else:
                _upgrade(writer, note)
            try:
                yield writer
            except Exception:
                if not manifest.pending():  # every document is whole: serve what was written before the error
                    with contextlib.suppress(Exception):  # the run's own error is the one to show
                        writer.publish()
                raise
            writer.publish()
        finally:
            manifest.close()
            client.close()  # Chroma caches clients per path; a store removed and rebuilt needs a fresh one


def _upgrade(writer: Writer, note: Callable[[str], None]) -> None:
    """A store written by an older corpus gets the indexes this one reads, once, and is published with them."""
    collection = writer.store.collection
    migrated = keyword.migrate(writer.manifest.db)
    filled = vectors.backfill(writer.manifest.db, lambda ids: chroma_vectors(collection, ids)) \
        if collection is not None else 0
    placed = timeline.backfill(writer.manifest.db, lambda ids: chroma_metadatas(collection, ids)) \
        if collection is not None else 0
    if migrated or filled or placed:
        done = [*(["keyword postings built"] if migrated else []),
                *([f"{filled:,} chunk vectors copied from Chroma"] if filled else []),
                *([f"{placed:,} conversation chunks placed in time"] if placed else [])]
        note(f"upgraded the store's indexes: {', '.join(done)}")
        writer.changing(vectors=False)

