"""What the corpus holds: per source, how much and how fresh, read from the published manifest.

A caller with access groups (an HTTP token) learns only of what it may read: sources whose chunks
it can see, counted over those chunks, and failed items only of sources open to it as a whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from corpus.config import Config
from corpus.times import iso
from store import people
from store.filters import Filters
from store.manifest import Manifest
from store.replica import Snapshot

TOP_PEOPLE = 8


@dataclass(frozen=True)
class SourceInfo:
    name: str
    kind: str
    documents: int
    chunks: int
    last_ingest: str | None
    failed_items: int
    people: list[str]  # the most present people, most first


def list_sources(config: Config, snapshot: Snapshot | None, groups: Sequence[str] | None = None) -> list[SourceInfo]:
    kinds = {s.name: s.kind for s in config.sources}
    totals: dict[str, tuple[int, int, float | None]] = {}
    failures: dict[str, int] = {}
    present: dict[str, list[str]] = {}
    if snapshot is not None:
        present = people.top(snapshot.db, groups, TOP_PEOPLE)
        manifest = Manifest.over(snapshot.db)
        totals = {source: (docs, chunks or 0, last) for source, docs, chunks, last in manifest.source_totals()}
        if groups is not None:
            totals = _readable_totals(snapshot, groups, totals)
        for source, *_ in manifest.failures():
            failures[source] = failures.get(source, 0) + 1
    names = list(kinds) + [n for n in totals if n not in kinds]
    if groups is not None:
        open_to_caller = {s.name for s in config.sources if not s.access or set(s.access) & set(groups)}
        names = [n for n in names if n in totals or n in open_to_caller]
        failures = {n: count for n, count in failures.items() if n in open_to_caller}
    return [
        SourceInfo(
            name=name, kind=kinds.get(name, "?"), documents=totals.get(name, (0, 0, None))[0],
            chunks=totals.get(name, (0, 0, None))[1],
            last_ingest=iso(totals.get(name, (0, 0, None))[2]), failed_items=failures.get(name, 0),
            people=present.get(name, []),
        )
        for name in names
    ]


def _readable_totals(snapshot: Snapshot, groups: Sequence[str],
                     totals: dict[str, tuple[int, int, float | None]]) -> dict[str, tuple[int, int, float | None]]:
    """Documents and chunks the caller may read, per source; sources with none are left out."""
    clauses, args = Filters(groups=groups).sql()
    rows = snapshot.db.execute(
        f"SELECT m.source, count(DISTINCT m.doc_id), count(*) FROM chunk_meta m WHERE {' AND '.join(clauses)} "
        "GROUP BY m.source", args)
    return {source: (docs, chunks, totals.get(source, (0, 0, None))[2]) for source, docs, chunks in rows}

