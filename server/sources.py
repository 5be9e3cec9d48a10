"""What the corpus holds: per source, how much and how fresh, read from the published manifest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from corpus.config import Config
from ingest.manifest import Manifest
from server.replica import Snapshot


@dataclass(frozen=True)
class SourceInfo:
    name: str
    kind: str
    documents: int
    chunks: int
    last_ingest: str | None
    failed_items: int


def list_sources(config: Config, snapshot: Snapshot | None) -> list[SourceInfo]:
    kinds = {s.name: s.kind for s in config.sources}
    totals: dict[str, tuple[int, int, float | None]] = {}
    failures: dict[str, int] = {}
    if snapshot is not None:
        manifest = Manifest.over(snapshot.db)
        totals = {source: (docs, chunks or 0, last) for source, docs, chunks, last in manifest.source_totals()}
        for source, *_ in manifest.failures():
            failures[source] = failures.get(source, 0) + 1
    names = list(kinds) + [n for n in totals if n not in kinds]
    return [
        SourceInfo(
            name=name, kind=kinds.get(name, "?"), documents=totals.get(name, (0, 0, None))[0],
            chunks=totals.get(name, (0, 0, None))[1],
            last_ingest=_iso(totals.get(name, (0, 0, None))[2]), failed_items=failures.get(name, 0),
        )
        for name in names
    ]


def _iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="seconds") if epoch else None
