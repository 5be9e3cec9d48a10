"""The keyword (BM25) index: SQLite FTS5 beside the manifest, changed in the manifest's transactions.

Local Chroma has no keyword search, so this index is ours. It lives in the same SQLite file as the
manifest, and a document's rows are replaced in the very transaction that commits the document, so
the index and the store cannot drift apart: a crash leaves both before or both after.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence

from corpus.records import Chunk, Document, epoch
from store.filters import NO_FILTERS, PUBLIC, Filters, in_list

SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS chunk_text USING fts5(
    text, tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS chunk_meta (
    rowid INTEGER PRIMARY KEY,
    chunk_id TEXT NOT NULL UNIQUE,
    doc_id TEXT NOT NULL,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    updated REAL,
    access TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunk_meta_doc ON chunk_meta(doc_id);
CREATE INDEX IF NOT EXISTS chunk_meta_source ON chunk_meta(source);
CREATE TABLE IF NOT EXISTS chunk_people (
    chunk_rowid INTEGER NOT NULL,
    person TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunk_people_row ON chunk_people(chunk_rowid);
CREATE INDEX IF NOT EXISTS chunk_people_person ON chunk_people(person);
"""

MAX_TERMS = 32

_WORD = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset(
    "a an and are as at be but by can do does for from has have how i if in into is it its me my of on or "
    "our should so that the their then there these they this to was we what when where which who why will "
    "with you your".split()
)


def access_groups(doc: Document) -> list[str]:
    return list(doc.access) or [PUBLIC]


def replace_document(db: sqlite3.Connection, doc: Document, chunks: Sequence[Chunk]) -> None:
    """Inside the caller's transaction: the document's rows become exactly ``chunks``."""
    delete_documents(db, [doc.id])
    access = "|" + "|".join(access_groups(doc)) + "|"
    updated = epoch(doc.updated)
    for chunk in chunks:
        rowid = db.execute(
            "INSERT INTO chunk_meta (chunk_id, doc_id, source, kind, updated, access) VALUES (?, ?, ?, ?, ?, ?)",
            (chunk.id, doc.id, doc.source, doc.kind, updated, access),
        ).lastrowid
        db.execute("INSERT INTO chunk_text (rowid, text) VALUES (?, ?)", (rowid, chunk.embed_text))
        people = dict.fromkeys((*doc.authors, *chunk.people))
        db.executemany("INSERT INTO chunk_people (chunk_rowid, person) VALUES (?, ?)",
                       [(rowid, person.lower()) for person in people])


def delete_documents(db: sqlite3.Connection, doc_ids: Sequence[str]) -> None:
    for doc_id in doc_ids:
        rows = [r[0] for r in db.execute("SELECT rowid FROM chunk_meta WHERE doc_id=?", (doc_id,))]
        if not rows:
            continue
        marks = ",".join("?" * len(rows))
        db.execute(f"DELETE FROM chunk_text WHERE rowid IN ({marks})", rows)
        db.execute(f"DELETE FROM chunk_people WHERE chunk_rowid IN ({marks})", rows)
        db.execute(f"DELETE FROM chunk_meta WHERE rowid IN ({marks})", rows)


def delete_source(db: sqlite3.Connection, source: str | None) -> None:
    """Every row of one source, or of all sources when ``source`` is None."""
    where, args = ("WHERE source=?", (source,)) if source else ("", ())
    db.execute(f"DELETE FROM chunk_text WHERE rowid IN (SELECT rowid FROM chunk_meta {where})", args)
    db.execute(f"DELETE FROM chunk_people WHERE chunk_rowid IN (SELECT rowid FROM chunk_meta {where})", args)
    db.execute(f"DELETE FROM chunk_meta {where}", args)


def match_expression(query: str) -> str | None:
    """A safe FTS5 query: the query's words, quoted, any of them (BM25 ranks the ones with more).

    At most ``MAX_TERMS`` distinct words: each one more is another posting list to merge and score.
    """
    words = [w.lower() for w in _WORD.findall(query)]
    content = [w for w in words if w not in STOPWORDS] or words
    if not content:
        return None
    return " OR ".join(f'"{w}"' for w in list(dict.fromkeys(content))[:MAX_TERMS])


def search(db: sqlite3.Connection, query: str, limit: int, filters: Filters = NO_FILTERS) -> list[tuple[str, float]]:
    """(chunk id, BM25 score, higher is better), best first; filters apply inside the query."""
    expression = match_expression(query)
    if expression is None:
        return []
    clauses, args = filters.sql()
    sql = (f"SELECT m.chunk_id, -bm25(chunk_text) AS score FROM chunk_text JOIN chunk_meta m "
           f"ON m.rowid = chunk_text.rowid WHERE {' AND '.join(['chunk_text MATCH ?', *clauses])} "
           f"ORDER BY bm25(chunk_text) LIMIT ?")
    return [(row[0], float(row[1])) for row in db.execute(sql, (expression, *args, limit))]


def share_matching(db: sqlite3.Connection, filters: Filters) -> float:
    """The fraction of all chunks that pass the filters (1.0 for an empty store)."""
    clauses, args = filters.sql()
    total = db.execute("SELECT count(*) FROM chunk_meta").fetchone()[0]
    if not total:
        return 1.0
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    return db.execute(f"SELECT count(*) FROM chunk_meta m {where}", args).fetchone()[0] / total


def passing(db: sqlite3.Connection, chunk_ids: Sequence[str], filters: Filters) -> set[str]:
    """Which of ``chunk_ids`` pass the filters."""
    clauses, args = filters.sql()
    found: set[str] = set()
    for start in range(0, len(chunk_ids), 500):
        part = list(chunk_ids[start:start + 500])
        sql = f"SELECT m.chunk_id FROM chunk_meta m WHERE {' AND '.join([in_list('m.chunk_id', part), *clauses])}"
        found.update(row[0] for row in db.execute(sql, (*part, *args)))
    return found
