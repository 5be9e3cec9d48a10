"""What is in the store: per source documents, chunks and freshness, its size, and what failed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from corpus.config import Config
from corpus.times import iso
from store import people
from store.manifest import Manifest


@dataclass(frozen=True)
class SourceStatus:
    name: str
    kind: str
    configured: bool
    documents: int
    chunks: int
    last_ingest: float | None

    def as_dict(self) -> dict:
        return {**asdict(self), "last_ingest": iso(self.last_ingest)}


@dataclass(frozen=True)
class FailedItem:
    source: str
    path: str  # the item's id in its source: a file's path under the source folder, a Slack conversation's day
    reason: str
    since: float  # when it first failed; it has failed on every ingest since

    def as_dict(self) -> dict:
        return {**asdict(self), "since": iso(self.since)}


@dataclass(frozen=True)
class LastRun:
    started: float
    finished: float | None  # None: the run did not finish (killed, or still going)
    summary: dict  # what `corpus ingest` reported: seconds, per-source counts and seconds

    def as_dict(self) -> dict:
        return {"started": iso(self.started), "finished": iso(self.finished), "summary": self.summary}


@dataclass(frozen=True)
class UnnamedSpeakers:
    source: str
    path: str  # the recording's id in its source
    speakers: list[str]  # labels with no name yet: "Speaker 1", …


@dataclass(frozen=True)
class Status:
    store: str
    size_bytes: int
    sources: list[SourceStatus]
    last_run: LastRun | None
    failures: list[FailedItem]
    unnamed_speakers: list[UnnamedSpeakers] = field(default_factory=list)  # diarized recordings to name

    def as_dict(self) -> dict:
        """The documented `corpus status --json` shape (docs/json.md): named fields, ISO 8601 times."""
        return {"store": self.store, "size_bytes": self.size_bytes,
                "sources": [s.as_dict() for s in self.sources],
                "last_run": self.last_run.as_dict() if self.last_run else None,
                "failures": [f.as_dict() for f in self.failures],
                "unnamed_speakers": [asdict(u) for u in self.unnamed_speakers]}


def status(config: Config) -> Status:
    path = config.store_path
    manifest_path = path / "manifest.sqlite"
    totals: dict[str, tuple[int, int, float | None]] = {}
    failures: list[FailedItem] = []
    unnamed: list[UnnamedSpeakers] = []
    last_run = None
    if manifest_path.exists():
        manifest = Manifest(manifest_path, readonly=True)
        try:
            totals = {s: (d, c or 0, t) for s, d, c, t in manifest.source_totals()}
            failures = [FailedItem(f.source, f.native_id, f.reason, f.since) for f in manifest.failures()]
            last_run = LastRun(*run) if (run := manifest.last_run()) else None
            unnamed = [UnnamedSpeakers(*row) for row in people.unnamed(manifest.db)]
        finally:
            manifest.close()
    sources = [
        SourceStatus(s.name, s.kind, True, *totals.get(s.name, (0, 0, None))) for s in config.sources
    ] + [
        SourceStatus(name, "?", False, *values) for name, values in totals.items()
        if name not in {s.name for s in config.sources}
    ]
    store = config.corpus.url or str(path)
    return Status(store, _size(path), sources, last_run, failures, unnamed)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0
