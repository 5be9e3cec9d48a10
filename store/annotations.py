"""What `corpus dream` found, recorded beside the chunks and never in them.

Annotations live in the manifest database, so they are published with each generation and read by
search from the same immutable copy as the keyword index. They are reversible by construction: the
sources and the stored chunks are untouched, `corpus dream --undo` deletes the rows, and a document
that is re-ingested or removed loses its annotations in the same transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SCHEMA = """
CREATE TABLE IF NOT EXISTS annotations (
    chunk_id TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    relation TEXT NOT NULL,
    other_chunk_id TEXT NOT NULL,
    other_doc_id TEXT NOT NULL,
    other_title TEXT NOT NULL,
    other_citation TEXT NOT NULL,
    other_date TEXT,
    detail TEXT NOT NULL,
    judged_by TEXT NOT NULL,
    PRIMARY KEY (chunk_id, relation, other_chunk_id)
);
CREATE INDEX IF NOT EXISTS annotations_doc ON annotations(doc_id);
CREATE INDEX IF NOT EXISTS annotations_other_doc ON annotations(other_doc_id);
CREATE TABLE IF NOT EXISTS dream_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started REAL NOT NULL,
    finished REAL,
    stats TEXT
);
"""

# relation -> how a search result says it
PHRASES = {
    "duplicate_of": "duplicate of",
    "conflicts_with": "conflicts with",
    "superseded_by": "possibly superseded by",
    "supersedes": "supersedes",
}
DOWN_RANKED = "superseded_by"


@dataclass(frozen=True)
class Annotation:
    chunk_id: str
    doc_id: str
    relation: str
    other_chunk_id: str
    other_doc_id: str
    other_title: str
    other_citation: str
    other_date: str | None
    detail: str
    judged_by: str

    def note(self) -> str:
        """One line for a search hit: what, with what, from when, why."""
        when = f", {self.other_date}" if self.other_date else ""
        return f"{PHRASES[self.relation]} “{self.other_title}”{when} <{self.other_citation}>: {self.detail}"


def add(db: sqlite3.Connection, rows: Iterable[Annotation]) -> None:
    """Inside the caller's transaction."""
    db.executemany(
        "INSERT OR REPLACE INTO annotations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(a.chunk_id, a.doc_id, a.relation, a.other_chunk_id, a.other_doc_id, a.other_title, a.other_citation,
          a.other_date, a.detail, a.judged_by) for a in rows],
    )


def drop_documents(db: sqlite3.Connection, doc_ids: Sequence[str]) -> None:
    """Annotations on or pointing at these documents; they no longer describe what is stored."""
    for doc_id in doc_ids:
        db.execute("DELETE FROM annotations WHERE doc_id=? OR other_doc_id=?", (doc_id, doc_id))


def drop_orphans(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM annotations WHERE doc_id NOT IN (SELECT doc_id FROM documents) "
               "OR other_doc_id NOT IN (SELECT doc_id FROM documents)")


def clear(db: sqlite3.Connection) -> int:
    """Every annotation and the record of past runs, so the next dream looks at everything again."""
    count = db.execute("SELECT count(*) FROM annotations").fetchone()[0]
    db.execute("DELETE FROM annotations")
    db.execute("DELETE FROM dream_runs")
    return count


def for_chunks(db: sqlite3.Connection, chunk_ids: Sequence[str]) -> dict[str, list[Annotation]]:
    """Annotations of these chunks; none from a generation published before dreaming existed."""
    found: dict[str, list[Annotation]] = {}
    for start in range(0, len(chunk_ids), 500):
        part = list(chunk_ids[start:start + 500])
        try:
            rows = db.execute(f"SELECT * FROM annotations WHERE chunk_id IN ({','.join('?' * len(part))}) "
                              "ORDER BY relation, other_chunk_id", part).fetchall()
        except sqlite3.OperationalError:
            return {}
        for row in rows:
            found.setdefault(row[0], []).append(Annotation(*row))
    return found


def every(db: sqlite3.Connection) -> list[Annotation]:
    return [Annotation(*row) for row in db.execute("SELECT * FROM annotations ORDER BY doc_id, chunk_id, relation")]


def last_run_started(db: sqlite3.Connection) -> float | None:
    row = db.execute("SELECT max(started) FROM dream_runs WHERE finished IS NOT NULL").fetchone()
    return row[0] if row else None
