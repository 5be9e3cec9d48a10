"""Per-document bookkeeping in SQLite: what was ingested from which item, and what is in flight.

A document's replace is journalled: ``pending`` is set before the vector store is touched and
cleared in the same transaction that records the new fingerprint. A crash in between leaves a
pending row, which ``recover`` turns back into "not ingested" so the next run redoes it whole.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from corpus.errors import CorpusError
from corpus.records import Chunk, Document
from store import annotations, keyword, timeline, vectors

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    native_id TEXT NOT NULL,
    stamp TEXT,
    digest TEXT,
    chunks INTEGER NOT NULL DEFAULT 0,
    pending INTEGER,
    title TEXT,
    ingested_at REAL
);
CREATE INDEX IF NOT EXISTS documents_source ON documents(source);
CREATE TABLE IF NOT EXISTS failures (
    source TEXT NOT NULL,
    native_id TEXT NOT NULL,
    stamp TEXT,
    reason TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (source, native_id)
);
CREATE TABLE IF NOT EXISTS source_settings (
    source TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started REAL NOT NULL,
    finished REAL,
    stats TEXT
);
"""


@dataclass(frozen=True)
class Entry:
    doc_id: str
    source: str
    native_id: str
    stamp: str | None
    digest: str | None
    chunks: int


class Failure(NamedTuple):
    """An item the last runs could not ingest; ``since`` is when it first failed (epoch seconds)."""

    source: str
    native_id: str
    reason: str
    stamp: str | None
    since: float


class CorruptManifest(CorpusError):
    """The manifest file is not a readable SQLite database; `corpus ingest --full` sets it aside."""


class Manifest:
    def __init__(self, path: Path, readonly: bool = False):
        self.path = path
        try:
            if readonly:
                self.db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=30)
                self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(path, timeout=30)
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.executescript(SCHEMA + keyword.SCHEMA + vectors.SCHEMA + annotations.SCHEMA + timeline.SCHEMA)
            self.db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.OperationalError as exc:  # locked, unreadable, out of space: the file itself may be fine
            raise CorpusError(f"{path}: cannot open the manifest: {exc}") from None
        except sqlite3.DatabaseError as exc:
            raise CorruptManifest(f"{path}: the manifest is corrupt ({exc}); run `corpus ingest --full` to set it "
                                  "aside and rebuild the store from the sources") from None

    @classmethod
    def set_aside_if_corrupt(cls, path: Path, note: Callable[[str], None]) -> Manifest:
        """For a rebuild: a corrupt manifest is moved aside (kept for a post-mortem) and a new one started."""
        try:
            return cls(path)
        except CorruptManifest:
            aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
            for suffix in ("", "-wal", "-shm"):
                if Path(f"{path}{suffix}").exists():
                    os.replace(f"{path}{suffix}", f"{aside}{suffix}")
            note(f"{path} was corrupt: set aside as {aside.name}; rebuilding the store from the sources")
            return cls(path)

    @classmethod
    def over(cls, db: sqlite3.Connection) -> Manifest:
        """A read view over an open connection, such as a published generation's immutable copy."""
        manifest = cls.__new__(cls)
        manifest.path, manifest.db = None, db
        return manifest

    def close(self) -> None:
        self.db.close()

    # -- reading -------------------------------------------------------------------------------

    def entries(self, source: str) -> dict[str, Entry]:
        rows = self.db.execute(
            "SELECT doc_id, source, native_id, stamp, digest, chunks FROM documents WHERE source=? AND pending IS NULL",
            (source,),
        )
        return {row[2]: Entry(*row) for row in rows}

    def pending(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT doc_id FROM documents WHERE pending IS NOT NULL")]

    def failures(self, source: str | None = None) -> list[Failure]:
        sql = "SELECT source, native_id, reason, stamp, at FROM failures"
        args: tuple = ()
        if source:
            sql, args = sql + " WHERE source=?", (source,)
        return [Failure(*row) for row in self.db.execute(sql + " ORDER BY source, native_id", args)]

    def source_totals(self) -> Iterator[tuple[str, int, int, float | None]]:
        """(source, documents, chunks, last ingest time) for every source with documents."""
        yield from self.db.execute(
            "SELECT source, count(*), sum(chunks), max(ingested_at) FROM documents "
            "WHERE pending IS NULL GROUP BY source ORDER BY source"
        )

    def last_run(self) -> tuple[float, float | None, dict] | None:
        row = self.db.execute("SELECT started, finished, stats FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        return (row[0], row[1], json.loads(row[2] or "{}")) if row else None

    # -- the journalled replace ------------------------------------------------------------------

    def begin(self, docs: list[tuple[str, str, str, int]]) -> None:
        """Mark documents (doc_id, source, native_id, new chunk count) in flight before the store is touched."""
        with self.db:
            self.db.executemany(
                "INSERT INTO documents (doc_id, source, native_id, pending) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(doc_id) DO UPDATE SET pending=excluded.pending",
                docs,
            )

    def commit(self, docs: Sequence[tuple[Document, Sequence[Chunk], str]], embeddings: np.ndarray) -> None:
        """Record (document, its chunks, item stamp) as ingested, keyword rows and the chunks' ``embeddings``
        (one per chunk, in order, as given to the vector store) included, in one transaction."""
        now = time.time()
        start = 0
        with self.db:
            keyword.replace_documents(self.db, [(doc, chunks) for doc, chunks, _ in docs])
            timeline.write(self.db, [(doc, chunks) for doc, chunks, _ in docs])
            for doc, chunks, stamp in docs:
                self.db.execute(
                    "UPDATE documents SET stamp=?, digest=?, chunks=?, pending=NULL, title=?, ingested_at=? "
                    "WHERE doc_id=?",
                    (stamp, doc.digest, len(chunks), doc.title, now, doc.id),
                )
                vectors.write(self.db, [chunk.id for chunk in chunks], embeddings[start:start + len(chunks)])
                start += len(chunks)
                annotations.drop_documents(self.db, [doc.id])
                self.db.execute("DELETE FROM failures WHERE source=? AND native_id=?", (doc.source, doc.native_id))

    def forget(self, doc_id: str) -> None:
        with self.db:
            self.db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
            keyword.delete_documents(self.db, [doc_id])
            annotations.drop_documents(self.db, [doc_id])

    def restamp(self, doc_id: str, stamp: str) -> None:
        """Same content under a new stamp (a touched file): remember the stamp, re-embed nothing."""
        with self.db:
            self.db.execute("UPDATE documents SET stamp=? WHERE doc_id=?", (stamp, doc_id))

    # -- failures and runs -----------------------------------------------------------------------

    def record_failure(self, source: str, native_id: str, stamp: str, reason: str) -> None:
        """An item failing again keeps the time it first failed: `corpus status --failed` says since when."""
        with self.db:
            self.db.execute(
                "INSERT INTO failures (source, native_id, stamp, reason, at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(source, native_id) DO UPDATE SET stamp=excluded.stamp, reason=excluded.reason",
                (source, native_id, stamp, reason, time.time()),
            )

    def clear_failures(self, source: str, keep: set[str]) -> None:
        """Drop failures of items that are gone or now ingest fine."""
        with self.db:
            for (native_id,) in list(self.db.execute("SELECT native_id FROM failures WHERE source=?", (source,))):
                if native_id not in keep:
                    self.db.execute("DELETE FROM failures WHERE source=? AND native_id=?", (source, native_id))

    def settings_of(self, source: str) -> str | None:
        """The fingerprint of the source's settings at its last complete ingest (None: not known)."""
        row = self.db.execute("SELECT fingerprint FROM source_settings WHERE source=?", (source,)).fetchone()
        return row[0] if row else None

    def record_settings(self, source: str, fingerprint: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO source_settings (source, fingerprint) VALUES (?, ?)",
                            (source, fingerprint))

    def drop_source(self, source: str | None) -> None:
        """Forget one source (or every source when None): documents, failures, settings and keyword rows."""
        where, args = ("WHERE source=?", (source,)) if source else ("", ())
        with self.db:
            self.db.execute(f"DELETE FROM documents {where}", args)
            self.db.execute(f"DELETE FROM failures {where}", args)
            self.db.execute(f"DELETE FROM source_settings {where}", args)
            keyword.delete_source(self.db, source)
            annotations.drop_orphans(self.db)

    def start_run(self) -> int:
        with self.db:
            return int(self.db.execute("INSERT INTO runs (started) VALUES (?)", (time.time(),)).lastrowid)

    def finish_run(self, run_id: int, stats: dict) -> None:
        with self.db:
            self.db.execute("UPDATE runs SET finished=?, stats=? WHERE id=?", (time.time(), json.dumps(stats), run_id))
