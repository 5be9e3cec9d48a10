"""What is in the store: per source documents, chunks and freshness, its size, and what failed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from corpus.config import Config
from store.manifest import Manifest


@dataclass(frozen=True)
class SourceStatus:
    name: str
    kind: str
    configured: bool
    documents: int
    chunks: int
    last_ingest: float | None


@dataclass(frozen=True)
class Status:
    store: str
    size_bytes: int
    sources: list[SourceStatus]
    last_run: tuple[float, float | None, dict] | None
    failures: list[tuple[str, str, str]]  # source, item, reason


def status(config: Config) -> Status:
    path = config.store_path
    manifest_path = path / "manifest.sqlite"
    totals: dict[str, tuple[int, int, float | None]] = {}
    failures: list[tuple[str, str, str]] = []
    last_run = None
    if manifest_path.exists():
        manifest = Manifest(manifest_path, readonly=True)
        try:
            totals = {s: (d, c or 0, t) for s, d, c, t in manifest.source_totals()}
            failures = [(s, n, r) for s, n, r, _ in manifest.failures()]
            last_run = manifest.last_run()
        finally:
            manifest.close()
    sources = [
        SourceStatus(s.name, s.kind, True, *totals.get(s.name, (0, 0, None))) for s in config.sources
    ] + [
        SourceStatus(name, "?", False, *values) for name, values in totals.items()
        if name not in {s.name for s in config.sources}
    ]
    store = config.corpus.url or str(path)
    return Status(store, _size(path), sources, last_run, failures)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0
