"""The read path: one search API that `corpus search` and the MCP server both call."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from corpus.config import Config
from corpus.errors import CorpusError
from ingest.embedder import Embedder
from ingest.store import ChunkStore, open_client

MAX_LIMIT = 50


@dataclass(frozen=True)
class Filters:
    """Applied inside the store query, so a filter never empties a top-k taken before it."""

    kinds: Sequence[str] = ()
    sources: Sequence[str] = ()
    people: Sequence[str] = ()
    after: datetime | None = None
    before: datetime | None = None

    def where(self) -> dict | None:
        clauses: list[dict] = []
        if self.kinds:
            clauses.append({"kind": {"$in": list(self.kinds)}})
        if self.sources:
            clauses.append({"source": {"$in": list(self.sources)}})
        if self.people:
            people = [{"people": {"$contains": p}} for p in self.people]
            clauses.append(people[0] if len(people) == 1 else {"$or": people})
        if self.after:
            clauses.append({"updated": {"$gte": self.after.timestamp()}})
        if self.before:
            clauses.append({"updated": {"$lt": self.before.timestamp()}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}


@dataclass(frozen=True)
class Hit:
    id: str
    doc_id: str
    title: str
    kind: str
    source: str
    date: str | None
    text: str
    citation: str
    citation_label: str
    score: float
    section: str | None = None
    page: int | None = None
    people: list[str] = field(default_factory=list)


class Searcher:
    def __init__(self, config: Config, embedder: Embedder | None = None):
        self.config = config
        self.embedder = embedder or Embedder(config.embedding.model, config.embedding.device)
        client = open_client(config.store_path, config.corpus.url)
        self.store = ChunkStore(client, self.embedder, create=False)

    def search(self, query: str, limit: int = 8, filters: Filters = Filters()) -> list[Hit]:
        query = query.strip()
        if not query:
            raise CorpusError("the query is empty; pass a few words describing what you are looking for")
        limit = max(1, min(limit, MAX_LIMIT))
        if self.store.collection is None or self.store.count() == 0:
            return []
        vector = self.embedder.embed([query])
        result = self.store.collection.query(
            query_embeddings=vector, n_results=limit, where=filters.where(),
            include=["documents", "metadatas", "distances"],
        )
        return [
            _hit(id_, text, meta, 1.0 - distance)
            for id_, text, meta, distance in zip(
                result["ids"][0], result["documents"][0], result["metadatas"][0], result["distances"][0], strict=True
            )
        ]


def _hit(id_: str, text: str, meta: dict, score: float) -> Hit:
    updated = meta.get("updated")
    return Hit(
        id=id_,
        doc_id=meta["doc_id"],
        title=meta.get("title", ""),
        kind=meta.get("kind", ""),
        source=meta.get("source", ""),
        date=datetime.fromtimestamp(updated, tz=UTC).date().isoformat() if updated else None,
        text=text,
        citation=meta.get("citation_uri", ""),
        citation_label=meta.get("citation_label", ""),
        score=round(float(score), 4),
        section=meta.get("section"),
        page=meta.get("page"),
        people=list(meta.get("people") or []),
    )
