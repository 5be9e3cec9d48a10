"""Where each chunk of a conversation sits in time, so reading on from a hit crosses document boundaries.

A Slack channel is stored as many documents (bursts and threads). Reading on from a hit means the chunks
said just before and after it in that channel, whichever document holds them. Chroma can filter by channel
but neither order nor limit by time, so each such chunk's conversation and time are kept here, beside its
``chunk_meta`` row: written in the manifest transaction that writes that row, deleted with it by a trigger.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence

from corpus.records import Chunk, Document
from store.filters import Filters

KINDS = ("slack",)  # kinds whose documents are stretches of one conversation, named by their context

SCHEMA = """
CREATE TABLE IF NOT EXISTS chunk_timeline (
    rowid INTEGER PRIMARY KEY,   -- the chunk's chunk_meta rowid
    conversation TEXT NOT NULL,  -- its source and context (the channel), as JSON
    at REAL                      -- epoch seconds of its first message; NULL when nothing in it was said then
);
CREATE INDEX IF NOT EXISTS chunk_timeline_at ON chunk_timeline(conversation, at);
CREATE TRIGGER IF NOT EXISTS chunk_timeline_follows_meta AFTER DELETE ON chunk_meta BEGIN
    DELETE FROM chunk_timeline WHERE rowid = old.rowid;
END;
"""

Lookup = Callable[[list[str]], dict[str, dict]]  # chunk id -> its Chroma metadata, for ids Chroma has


def conversation(source: str, context: str) -> str:
    return json.dumps([source, context])


def write(db: sqlite3.Connection, docs: Sequence[tuple[Document, Sequence[Chunk]]]) -> None:
    """Inside the caller's transaction, after the chunks' chunk_meta rows are written."""
    db.executemany(
        "INSERT OR REPLACE INTO chunk_timeline (rowid, conversation, at) SELECT rowid, ?, ? FROM chunk_meta "
        "WHERE chunk_id = ?",
        [(conversation(doc.source, doc.context), chunk.locator.start, chunk.id)
         for doc, chunks in docs if doc.kind in KINDS for chunk in chunks],
    )


def backfill(db: sqlite3.Connection, lookup: Lookup, batch: int = 5000) -> int:
    """Place the conversation chunks written before this table existed (the writer calls this on open), from
    their Chroma metadata; returns how many. Only chunks of conversation kinds are read, once."""
    marks = ",".join("?" * len(KINDS))
    missing = [row[0] for row in db.execute(
        "SELECT m.chunk_id FROM chunk_meta m LEFT JOIN chunk_timeline t ON t.rowid = m.rowid "
        f"WHERE m.kind IN ({marks}) AND t.rowid IS NULL", KINDS)]
    for start in range(0, len(missing), batch):
        found = lookup(missing[start:start + batch])
        with db:
            db.executemany(
                "INSERT OR REPLACE INTO chunk_timeline (rowid, conversation, at) SELECT rowid, ?, ? FROM chunk_meta "
                "WHERE chunk_id = ?",
                [(conversation(meta["source"], meta.get("context", "")), meta.get("start"), chunk_id)
                 for chunk_id, meta in found.items()],
            )
    return len(missing)


def around(db: sqlite3.Connection, first: str, last: str, before: int, after: int,
           filters: Filters) -> tuple[list[str], list[str]]:
    """The ids of up to ``before`` chunks said before chunk ``first`` and ``after`` chunks said after chunk
    ``last`` in the same conversation, from other documents, in time order, among chunks passing ``filters``.

    Both lists are empty for a chunk that is not on a timeline, or in a store published before this table.
    """
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'chunk_timeline'").fetchone() is None:
        return [], []
    clauses, args = filters.sql()
    earlier = _side(db, first, "<", "DESC", before, clauses, args)
    later = _side(db, last, ">", "ASC", after, clauses, args)
    return earlier[::-1], later


def _side(db: sqlite3.Connection, chunk_id: str, compare: str, order: str, n: int, clauses: list[str],
          args: list) -> list[str]:
    if n < 1:
        return []
    # the conversation's index walks outward from the chunk's time; each row is checked against the filters
    sql = ("SELECT m.chunk_id FROM chunk_meta k JOIN chunk_timeline here ON here.rowid = k.rowid "
           "JOIN chunk_timeline t ON t.conversation = here.conversation AND t.at " + compare + " here.at "
           "CROSS JOIN chunk_meta m ON m.rowid = t.rowid AND m.doc_id != k.doc_id "
           + "".join(f"AND {c} " for c in clauses) +
           "WHERE k.chunk_id = ? ORDER BY t.at " + order + " LIMIT ?")
    return [row[0] for row in db.execute(sql, (*args, chunk_id, n))]
