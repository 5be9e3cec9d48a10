"""What a search returns: the hit records the search, fetch and check modules share."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal


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
    # what server.relevance measured: the estimated chance (0-1) that this passage holds the answer, in words
    # ("strong", "partial", "weak"), and the two signals it rests on (query-passage cosine, IDF-weighted share of
    # the query's words in the passage)
    relevance: float = 0.0
    match: Literal["strong", "partial", "weak"] = "weak"
    similarity: float = 0.0
    coverage: float = 0.0


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
        date_source=meta.get("date_source"),
    )


def dated(date: str | None, date_source: str | None) -> str:
    """A hit's date as a reader sees it, with where it came from: "2024-07-18 (date from transcript)"."""
    if not date:
        return "undated"
    return f"{date} (date from {date_source})" if date_source else date
