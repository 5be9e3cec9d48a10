"""The Chroma collection holding chunk vectors: embedded on disk, or a Chroma server at [corpus] url."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

import numpy as np

from corpus.errors import ConfigError, StoreMismatchError
from corpus.records import Chunk, Document, epoch
from store.keyword import access_groups

log = logging.getLogger(__name__)

COLLECTION = "corpus"


def open_client(path: Path, url: str | None):
    """A Chroma client for the configured store. Telemetry is off; nothing leaves the machine."""
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    if url:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConfigError(f"corpus.url: {url!r} is not an http(s) URL")
        return chromadb.HttpClient(
            host=parsed.hostname, port=parsed.port or (443 if parsed.scheme == "https" else 80),
            ssl=parsed.scheme == "https", settings=settings,
        )
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path / "chroma"), settings=settings)


class ModelInfo(Protocol):
    name: str

    @property
    def dimension(self) -> int: ...


class ChunkStore:
    """Vectors and metadata of chunks. Filters later searches need live in each chunk's metadata."""

    def __init__(self, client, model: ModelInfo, create: bool = True, rebuild: bool = False):
        self.client = client
        self.model = model  # its dimension is asked for only when a collection is created
        if rebuild:
            self._delete_collection()
        self.collection = self._collection(create)
        self.max_batch = int(client.get_max_batch_size())

    def _collection(self, create: bool):
        from chromadb.errors import NotFoundError

        try:
            collection = self.client.get_collection(COLLECTION, embedding_function=None)
        except (NotFoundError, ValueError):
            if not create:
                return None
            return self.client.create_collection(
                COLLECTION,
                embedding_function=None,  # we always pass our own vectors; never Chroma's ONNX default
                metadata={"embedding_model": self.model.name, "dimension": self.model.dimension},
                configuration={"hnsw": {"space": "cosine"}},
            )
        meta = collection.metadata or {}
        if meta.get("embedding_model") != self.model.name:
            raise StoreMismatchError(
                f"the store was built with {meta.get('embedding_model')!r} but the config names "
                f"{self.model.name!r}; run `corpus ingest --full` to rebuild it with the configured model"
            )
        return collection

    def count(self) -> int:
        return self.collection.count() if self.collection is not None else 0

    def upsert(self, docs: Sequence[tuple[Document, Sequence[Chunk]]], vectors: np.ndarray) -> None:
        """Write the chunks of several documents; ``vectors`` holds their embeddings in the same order."""
        rows = [(doc, chunk) for doc, chunks in docs for chunk in chunks]
        for start in range(0, len(rows), self.max_batch):
            part = rows[start:start + self.max_batch]
            self.collection.upsert(
                ids=[chunk.id for _, chunk in part],
                embeddings=vectors[start:start + len(part)],
                documents=[chunk.text for _, chunk in part],
                metadatas=[chunk_metadata(doc, chunk) for doc, chunk in part],
            )

    def delete_ids(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        for start in range(0, len(ids), self.max_batch):
            self.collection.delete(ids=list(ids[start:start + self.max_batch]))

    def delete_document(self, doc_id: str) -> None:
        self.collection.delete(where={"doc_id": doc_id})

    def delete_source(self, source: str) -> None:
        self.collection.delete(where={"source": source})

    def _delete_collection(self) -> None:
        """Remove every chunk (``--full``), whatever model built them."""
        from chromadb.errors import NotFoundError

        with contextlib.suppress(NotFoundError, ValueError):
            self.client.delete_collection(COLLECTION)


def chroma_vectors(collection, ids: list[str]) -> dict[str, Sequence[float]]:
    """The stored vectors of these chunks, by id (those Chroma has)."""
    got = collection.get(ids=ids, include=["embeddings"])
    return dict(zip(got["ids"], got["embeddings"], strict=True))


def chroma_metadatas(collection, ids: list[str]) -> dict[str, dict]:
    """The stored metadata of these chunks, by id (those Chroma has)."""
    got = collection.get(ids=ids, include=["metadatas"])
    return dict(zip(got["ids"], got["metadatas"], strict=True))


def chunk_metadata(doc: Document, chunk: Chunk) -> dict:
    """Flat metadata (Chroma takes scalars and lists of scalars) for filtering and citing."""
    meta: dict = {
        "doc_id": doc.id,
        "source": doc.source,
        "kind": doc.kind,
        "title": doc.title,
        "ordinal": chunk.ordinal,
        "header": chunk.header,
        "citation_uri": chunk.citation.uri,
        "citation_label": chunk.citation.label,
    }
    if doc.context:
        meta["context"] = doc.context
    people = list(dict.fromkeys((*doc.authors, *chunk.people)))
    if people:
        meta["people"] = people
        meta["people_key"] = [p.lower() for p in people]  # the people filter is case-insensitive
    meta["access"] = access_groups(doc)
    for name, value in (("created", doc.created), ("updated", doc.updated)):
        if value is not None:
            meta[name] = epoch(value)
    if doc.date_source:
        meta["date_source"] = doc.date_source
    loc = chunk.locator
    if loc.page is not None:
        meta["page"] = loc.page
    if loc.headings:
        meta["section"] = " › ".join(loc.headings)
    if loc.start is not None:
        meta["start"] = loc.start
    if loc.end is not None:
        meta["end"] = loc.end
    return meta

