"""The question log: what people asked the corpus, so `corpus gaps` can learn what it fails to answer.

One SQLite file (WAL) in the store folder, private to its owner. A search only puts its record on a queue;
one writer thread per log commits whatever has queued up, so logging never makes a search wait on the disk.
Each batch opens its own connection: `corpus gaps --forget` may delete the file under a running server, and
the next batch simply starts a new one. Entries older than the retention are deleted when a writer starts.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import sleep
from typing import Literal

from corpus.errors import CorpusError

log = logging.getLogger("corpus.questionlog")

FILE = "questions.sqlite"
EXPIRY_INTERVAL = 86_400.0  # seconds between deletions of entries past the retention, in a long-running server
BATCH_WAIT = 0.2  # seconds the writer lets records gather: a busy server commits a few times a second, not per search
FLUSH_TIMEOUT = 5.0  # seconds a process waits at exit for its last records to be written
Kind = Literal["search", "gap"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS asked (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,                 -- seconds since the epoch, UTC
    query TEXT NOT NULL,
    caller TEXT NOT NULL,               -- an HTTP token's name, or "local"; never a token value
    kind TEXT NOT NULL,                 -- "search" or "gap" (a session's report_gap)
    verdict TEXT,                       -- the search's answer_in_corpus
    top_relevance REAL,                 -- its best hit's relevance
    missing TEXT,                       -- what a reported gap says was missing
    session TEXT NOT NULL DEFAULT '',   -- links a search to the fetches after it
    hits TEXT NOT NULL DEFAULT '[]'     -- the hit ids it returned, JSON
);
CREATE INDEX IF NOT EXISTS asked_time ON asked(time);
CREATE TABLE IF NOT EXISTS fetched (
    time REAL NOT NULL,
    session TEXT NOT NULL,
    item TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS fetched_session ON fetched(session, time);
"""


@dataclass(frozen=True)
class Entry:
    time: datetime  # UTC
    query: str
    caller: str
    kind: Kind
    verdict: str | None  # likely / possible / unlikely; None for a reported gap
    top_relevance: float | None  # None when the search found nothing, or for a reported gap
    missing: str | None = None  # a reported gap's own words
    fetched: tuple[str, ...] = ()  # ids of this search's hits read afterwards in the same session
    session: str = ""


@dataclass(frozen=True)
class _Asked:
    row: tuple


@dataclass(frozen=True)
class _Fetch:
    row: tuple


@dataclass(frozen=True)
class _Flush:
    done: threading.Event


class QuestionLog:
    """Record and read the log in ``store_dir``; records are written by a background thread."""

    def __init__(self, store_dir: Path, retention_days: int = 90):
        self.path = Path(store_dir) / FILE
        self.retention = timedelta(days=retention_days)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._lock = threading.Lock()
        self._warned = False

    # -- writing: enqueue only -------------------------------------------------------------------------

    def record(self, query: str, caller: str, kind: Kind = "search", verdict: str | None = None,
               top_relevance: float | None = None, missing: str | None = None, session: str = "",
               hits: Sequence[str] = (), time: datetime | None = None) -> None:
        """Queue one search or reported gap; returns at once."""
        when = (time or datetime.now(UTC)).timestamp()
        self._put(_Asked((when, query, caller, kind, verdict, top_relevance, missing, session,
                          json.dumps(list(hits)))))

    def fetched(self, session: str, item_id: str, time: datetime | None = None) -> None:
        """Queue that a session read this hit or document (it links to the searches before it)."""
        if session:
            self._put(_Fetch(((time or datetime.now(UTC)).timestamp(), session, item_id)))

    def flush(self, timeout: float = FLUSH_TIMEOUT) -> None:
        """Wait until everything queued so far is written (for readers in this process and at exit)."""
        if self._writer is None:
            return
        done = threading.Event()
        self._queue.put(_Flush(done))
        done.wait(timeout)

    def _put(self, item: _Asked | _Fetch) -> None:
        self._queue.put(item)
        if self._writer is None:
            with self._lock:
                if self._writer is None:
                    self._writer = threading.Thread(target=self._write_forever, name="corpus-questionlog",
                                                    daemon=True)
                    self._writer.start()
                    atexit.register(self.flush)

    def _write_forever(self) -> None:
        expired = 0.0  # when old entries were last deleted: at the first write, then daily
        while True:
            batch = [self._queue.get()]
            sleep(BATCH_WAIT)
            while True:  # everything that queued up meanwhile goes in one transaction
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                now = datetime.now(UTC).timestamp()
                expire = now - expired > EXPIRY_INTERVAL
                self._write(batch, expire)
                if expire:
                    expired = now
            except (OSError, sqlite3.Error) as exc:  # a read-only or full disk must not break searching
                if not self._warned:
                    log.warning("the question log %s cannot be written (%s); searches go on unlogged", self.path, exc)
                    self._warned = True
            for item in batch:
                if isinstance(item, _Flush):
                    item.done.set()

    def _write(self, batch: list, expire: bool) -> None:
        asked = [item.row for item in batch if isinstance(item, _Asked)]
        fetches = [item.row for item in batch if isinstance(item, _Fetch)]
        if not (asked or fetches or expire):
            return
        with self._connect() as db:
            if expire:
                cutoff = (datetime.now(UTC) - self.retention).timestamp()
                db.execute("DELETE FROM asked WHERE time < ?", (cutoff,))
                db.execute("DELETE FROM fetched WHERE time < ?", (cutoff,))
            db.executemany("INSERT INTO asked (time, query, caller, kind, verdict, top_relevance, missing, session, "
                           "hits) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", asked)
            db.executemany("INSERT INTO fetched (time, session, item) VALUES (?, ?, ?)", fetches)
        db.close()

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))  # what people asked is theirs: owner only
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL stays consistent; a power cut may lose the last records only
        db.executescript(SCHEMA)
        return db

    # -- reading ---------------------------------------------------------------------------------------

    def entries(self, since: datetime | None = None) -> list[Entry]:
        """Every entry since ``since`` (and within the retention), oldest first, each search with the ids of its
        hits that were fetched afterwards in the same session."""
        self.flush()
        if not self.path.exists():
            return []
        cutoff = datetime.now(UTC) - self.retention
        since = max(since, cutoff) if since is not None else cutoff
        db = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'fetched'").fetchone() is None:
                return []  # created, not yet written
            rows = db.execute("SELECT time, query, caller, kind, verdict, top_relevance, missing, session, hits "
                              "FROM asked WHERE time >= ? ORDER BY time, id", (since.timestamp(),)).fetchall()
            reads: dict[str, list[tuple[float, str]]] = {}
            for when, session, item in db.execute("SELECT time, session, item FROM fetched WHERE time >= ? "
                                                  "ORDER BY time", (since.timestamp(),)):
                reads.setdefault(session, []).append((when, item))
        except sqlite3.DatabaseError as exc:
            raise CorpusError(f"{self.path}: cannot read the question log ({exc}); `corpus gaps --forget` "
                              "erases it") from None
        finally:
            db.close()
        return [_entry(row, reads.get(row[7], [])) for row in rows]

    def forget(self) -> bool:
        """Erase the log: the file and its WAL and shared-memory companions. Whether there was one."""
        self.flush()
        existed = False
        for suffix in ("", "-wal", "-shm", "-journal"):
            path = self.path.with_name(self.path.name + suffix)
            if path.exists():
                path.unlink()
                existed = True
        return existed


def _entry(row: tuple, reads: list[tuple[float, str]]) -> Entry:
    when, query, caller, kind, verdict, top, missing, session, hits = row
    ids = json.loads(hits)
    docs = {hit.partition(":")[0] for hit in ids}
    fetched = tuple(dict.fromkeys(item for at, item in reads
                                  if at >= when and (item in ids or item.partition(":")[0] in docs)))
    return Entry(time=datetime.fromtimestamp(when, UTC), query=query, caller=caller, kind=kind, verdict=verdict,
                 top_relevance=top, missing=missing, fetched=fetched, session=session)
