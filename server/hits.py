"""What a search returns and how a caller narrows it: the records the search, fetch and check modules share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from corpus.records import epoch
from ingest import keyword


@dataclass(frozen=True)
class Filters:
    """Applied inside each retrieval, so a filter never empties a top-k taken before it."""

    kinds: Sequence[str] = ()
    sources: Sequence[str] = ()
    people: Sequence[str] = ()
    after: datetime | None = None
    before: datetime | None = None
    groups: Sequence[str] | None = None  # access groups of the caller; None: no restriction (local use)

    def where(self) -> dict | None:
        """The same filters as a Chroma ``where`` clause."""
        clauses: list[dict] = []
        if self.kinds:
            clauses.append({"kind": {"$in": list(self.kinds)}})
        if self.sources:
            clauses.append({"source": {"$in": list(self.sources)}})
        if self.people:
            clauses.append(_any([{"people_key": {"$contains": p.lower()}} for p in self.people]))
        if self.after:
            clauses.append({"updated": {"$gte": epoch(self.after)}})
        if self.before:
            clauses.append({"updated": {"$lt": epoch(self.before)}})
        if self.groups is not None:
            clauses.append(_any([{"access": {"$contains": g}} for g in (keyword.PUBLIC, *self.groups)]))
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def keyword_args(self) -> dict:
        return {
            "sources": self.sources, "kinds": self.kinds, "people": self.people, "groups": self.groups,
            "after": epoch(self.after),
            "before": epoch(self.before),
        }


NO_FILTERS = Filters()


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
    duplicates: list[str] = field(default_factory=list)  # citations of near-identical hits folded into this one
    notes: list[str] = field(default_factory=list)  # what `corpus dream` found: superseded, conflicting, duplicated


def hit_from(chunk_id: str, text: str, meta: dict, score: float) -> Hit:
    updated = meta.get("updated")
    return Hit(
        id=chunk_id,
        doc_id=meta["doc_id"],
        title=meta.get("title", ""),
        kind=meta.get("kind", ""),
        source=meta.get("source", ""),
        date=datetime.fromtimestamp(updated, tz=UTC).date().isoformat() if updated else None,
        text=text,
        citation=meta.get("citation_uri", ""),
        citation_label=meta.get("citation_label", ""),
        score=round(float(score), 5),
        section=meta.get("section"),
        page=meta.get("page"),
        people=list(meta.get("people") or []),
    )


def _any(clauses: list[dict]) -> dict:
    return clauses[0] if len(clauses) == 1 else {"$or": clauses}

