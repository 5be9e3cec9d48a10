"""What a search returns: the hit records the search, fetch and check modules share."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal


@dataclass(frozen=True)
class Passage:
    """Another passage of a hit's document that the query matched: part of the hit, cited on its own."""

    id: str
    text: str
    citation: str
    citation_label: str
    section: str | None = None
    page: int | None = None
    people: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


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
    date_source: str | None = None  # where ``date`` came from: front matter, git, metadata, transcript, slack, mtime
    # what server.relevance measured on the hit's most relevant passage (``text`` or one in ``more``): the estimated
    # chance (0-1) that it holds the answer, in words ("strong", "partial", "weak"), and the two signals it rests
    # on (query-passage cosine, IDF-weighted share of the query's words in the passage)
    relevance: float = 0.0
    match: Literal["strong", "partial", "weak"] = "weak"
    similarity: float = 0.0
    coverage: float = 0.0
    # The document's next best passages among those the query matched, best first: the answer is often the
    # passage beside the one that ranked first, and one hit a document leaves the others' places to other documents
    more: list[Passage] = field(default_factory=list)


def passage_from(chunk_id: str, text: str, meta: dict) -> Passage:
    return Passage(id=chunk_id, text=text, citation=meta.get("citation_uri", ""),
                   citation_label=meta.get("citation_label", ""), section=meta.get("section"), page=meta.get("page"),
                   people=list(meta.get("people") or []))


def hit_from(chunk_id: str, text: str, meta: dict, score: float, more: list[Passage] | None = None) -> Hit:
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
        date_source=meta.get("date_source"),
        more=more or [],
    )


def dated(date: str | None, date_source: str | None) -> str:
    """A hit's date as a reader sees it, with where it came from: "2024-07-18 (date from transcript)"."""
    if not date:
        return "undated"
    return f"{date} (date from {date_source})" if date_source else date
