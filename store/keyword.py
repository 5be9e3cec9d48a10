"""The keyword (BM25) index: SQLite FTS5 beside the manifest, changed in the manifest's transactions.

Local Chroma has no keyword search, so this index is ours. It lives in the same SQLite file as the
manifest, and a document's rows are replaced in the very transaction that commits the document, so
the index and the store cannot drift apart: a crash leaves both before or both after.

Search ranks with FTS5's bm25() but does not ask FTS5 for it, which would score every matching row:
it reads our own postings (``store.postings``, written in the same transactions) and computes a top-k
that skips rows that cannot enter it (``store.bm25``), with the same scores.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from corpus.records import Chunk, Document, epoch
from store import bm25, postings
from store import people as people_names
from store.filters import NO_FILTERS, PUBLIC, Filters

SCHEMA = f"""
CREATE VIRTUAL TABLE IF NOT EXISTS chunk_text USING fts5(
    text, tokenize = '{postings.TOKENIZER}'
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
CREATE INDEX IF NOT EXISTS chunk_meta_updated ON chunk_meta(updated);
CREATE TABLE IF NOT EXISTS chunk_people (
    chunk_rowid INTEGER NOT NULL,
    person TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunk_people_row ON chunk_people(chunk_rowid);
DROP INDEX IF EXISTS chunk_people_person;
CREATE INDEX IF NOT EXISTS chunk_people_by_person ON chunk_people(person, chunk_rowid);  -- covers a person filter
""" + postings.SCHEMA + people_names.SCHEMA

MAX_TERMS = 32
MIGRATE_BATCH = 10_000  # rows per segment when an older store gets its postings
FILTER_DEPTH = 4  # a filtered search first takes 4x the limit unfiltered and keeps what passes
FEW_ROWS = 20_000  # a filter expected to pass no more rows than this is applied before ranking

_WORD = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset(
    "a an and are as at be but by can do does for from has have how i if in into is it its many me much my of on or "
    "our should so that the their then there these they this to was we what when where which who why will "
    "with you your".split()
)


def access_groups(doc: Document) -> list[str]:
    return list(doc.access) or [PUBLIC]


# -- writing (inside the caller's transaction) -------------------------------------------------------------


def replace_documents(db: sqlite3.Connection, docs: Sequence[tuple[Document, Sequence[Chunk]]]) -> None:
    """Each document's rows become exactly its chunks; the new rows are one postings segment."""
    delete_documents(db, [doc.id for doc, _ in docs])
    rowid = max(postings.last_rowid(db), db.execute("SELECT coalesce(max(rowid), 0) FROM chunk_meta").fetchone()[0])
    texts: list[tuple[int, str]] = []
    for doc, chunks in docs:
        access = "|" + "|".join(access_groups(doc)) + "|"
        updated = epoch(doc.updated)
        for chunk in chunks:
            rowid += 1  # above every rowid a segment covers, so a tombstone never hides a new row
            db.execute("INSERT INTO chunk_meta (rowid, chunk_id, doc_id, source, kind, updated, access) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)", (rowid, chunk.id, doc.id, doc.source, doc.kind, updated, access))
            db.execute("INSERT INTO chunk_text (rowid, text) VALUES (?, ?)", (rowid, chunk.index_text))
            people = dict.fromkeys((*doc.authors, *chunk.people))
            db.executemany("INSERT INTO chunk_people (chunk_rowid, person) VALUES (?, ?)",
                           [(rowid, person.lower()) for person in people])
            people_names.record(db, people)
            texts.append((rowid, chunk.index_text))
    postings.add(db, texts)


def delete_documents(db: sqlite3.Connection, doc_ids: Sequence[str]) -> None:
    rows = [r for doc_id in doc_ids for (r,) in db.execute("SELECT rowid FROM chunk_meta WHERE doc_id=?", (doc_id,))]
    for start in range(0, len(rows), 500):
        part = rows[start:start + 500]
        marks = ",".join("?" * len(part))
        db.execute(f"DELETE FROM chunk_text WHERE rowid IN ({marks})", part)
        db.execute(f"DELETE FROM chunk_people WHERE chunk_rowid IN ({marks})", part)
        db.execute(f"DELETE FROM chunk_meta WHERE rowid IN ({marks})", part)
    postings.kill(db, rows)


def delete_source(db: sqlite3.Connection, source: str | None) -> None:
    """Every row of one source, or of all sources when ``source`` is None."""
    where, args = ("WHERE source=?", (source,)) if source else ("", ())
    rows = [r for (r,) in db.execute(f"SELECT rowid FROM chunk_meta {where}", args)]
    db.execute(f"DELETE FROM chunk_text WHERE rowid IN (SELECT rowid FROM chunk_meta {where})", args)
    db.execute(f"DELETE FROM chunk_people WHERE chunk_rowid IN (SELECT rowid FROM chunk_meta {where})", args)
    db.execute(f"DELETE FROM chunk_meta {where}", args)
    if source:
        postings.kill(db, rows)
    else:
        postings.clear(db)


def migrate(db: sqlite3.Connection) -> bool:
    """Give a store written before our postings existed its postings, once (the writer calls this on open);
    True when it did."""
    if postings.version(db) is not None:
        return False
    migrated = False
    with db:
        cursor = db.execute("SELECT rowid, text FROM chunk_text ORDER BY rowid")
        while batch := cursor.fetchmany(MIGRATE_BATCH):
            postings.add(db, batch)
            migrated = True
        postings.changed(db)
    return migrated


# -- searching ---------------------------------------------------------------------------------------------


def query_words(query: str) -> list[str]:
    """The query's distinct words, lowercased, without stopwords (unless that leaves none), at most ``MAX_TERMS``.

    Each one more is another posting list to read and score.
    """
    words = [w.lower() for w in _WORD.findall(query)]
    content = [w for w in words if w not in STOPWORDS] or words
    return list(dict.fromkeys(content))[:MAX_TERMS]


@dataclass(frozen=True)
class QueryTerm:
    """One of the query's words as the index has it: the rows holding it (ascending; none for a word the corpus
    never uses) and its idf, what finding it is worth. Words the index stems alike are one term."""

    word: str
    tokens: tuple[str, ...]
    rowids: np.ndarray
    idf: float
    scoring: bm25.Term  # how BM25 ranks with it: idf times the query words standing for it


def query_terms(db: sqlite3.Connection, query: str, view: postings.Rows | None = None) -> list[QueryTerm]:
    """The query's terms, read once per search: the keyword ranking, the passage order and the relevance of the
    hits all weigh them. A one-token word reads our postings; a word FTS5 splits into a phrase (``user_id``) is
    scored by FTS5 itself, as is every word of a store written before our postings existed. ``view``: the rows
    as the caller sees them (``readable``), so that how rare a word is counts only chunks the caller may read."""
    words = query_words(query)
    everything = postings.rows(db)
    rows = view or everything
    total = rows.count if rows is not None else db.execute("SELECT count(*) FROM chunk_meta").fetchone()[0]
    spelled: dict[tuple[str, ...], tuple[str, int]] = {}
    for word, tokens in zip(words, postings.word_tokens(db, words), strict=True):
        if tokens:
            first, count = spelled.get(tokens, (word, 0))
            spelled[tokens] = (first, count + 1)
    terms = []
    for tokens, (word, count) in spelled.items():
        if rows is not None and len(tokens) == 1:
            rowids, tfs = rows.postings(db, tokens[0])
            idf = bm25.idf(max(total, 1), len(rowids))
            scoring = bm25.Term(rowids, idf * count, tfs=tfs)
        else:
            found = db.execute("SELECT rowid, -bm25(chunk_text) FROM chunk_text WHERE chunk_text MATCH ? "
                               "ORDER BY rowid", (f'"{word}"',)).fetchall()
            rowids = np.array([r for r, _ in found], dtype=np.intp)
            scores = np.array([s for _, s in found]) * count
            if view is not None and everything is not None:  # FTS5 counted every row: its idf is rescaled
                seen = view.live[np.minimum(rowids, len(view.live) - 1)] & (rowids < len(view.live))
                scores = scores[seen] * bm25.idf(max(total, 1), int(seen.sum())) / \
                    bm25.idf(max(everything.count, 1), len(rowids))
                rowids = rowids[seen]
            idf = bm25.idf(max(total, 1), len(rowids))
            scoring = bm25.Term(rowids, float(count), scores=scores)
        terms.append(QueryTerm(word, tokens, rowids, idf, scoring))
    return terms


def readable(db: sqlite3.Connection, groups: Sequence[str] | None) -> postings.Rows | None:
    """The keyword index as a caller with these access groups sees it: None when that is all of it (a local
    caller, or groups that read every chunk) or for a store without our postings. BM25's idf and average length,
    and the verdict's word weights, are then counted over chunks that caller may read: counted over all, they
    told whether a hidden chunk holds a word."""
    rows = postings.rows(db)
    if groups is None or rows is None:
        return None
    clauses, args = Filters(groups=groups).sql()
    allowed = _allowed(db, rows, clauses, args)
    return rows.within(allowed) if (rows.live & ~allowed).any() else None


def term_weights(terms: Sequence[QueryTerm]) -> dict[str, float]:
    """The one-token terms the corpus holds, each with its idf: what finding it in a passage is worth (a rare
    word says more than a common one)."""
    return {t.tokens[0]: t.idf for t in terms if len(t.tokens) == 1 and len(t.rowids)}


def match_expression(query: str) -> str | None:
    """The FTS5 query search ranks by: the query's words, quoted, any of them."""
    words = query_words(query)
    return " OR ".join(f'"{w}"' for w in words) if words else None


def search(db: sqlite3.Connection, query: str, limit: int, filters: Filters = NO_FILTERS,
           terms: Sequence[QueryTerm] | None = None, view: postings.Rows | None = None) -> list[tuple[str, float]]:
    """(chunk id, BM25 score, higher is better), best first: FTS5's ranking of ``match_expression``.

    Filters apply inside: the top is taken among the rows that pass, never cut down after. ``terms``: the
    query's, when the caller has read them already (``query_terms``, with the same ``view``).
    """
    if not query_words(query) or limit < 1:
        return []
    rows = postings.rows(db)
    if rows is None:
        return _fts5_search(db, match_expression(query) or "", limit, filters)
    rows = view or rows
    scoring = [t.scoring for t in (query_terms(db, query, view) if terms is None else terms) if len(t.rowids)]
    clauses, args = filters.sql()
    if filters.people:  # checking candidates against a person's chunks lists them all anyway: list them first
        found, scores = bm25.top(scoring, rows.norm, limit, _allowed(db, rows, clauses, args))
    elif clauses:
        found, scores = _filtered_top(db, rows, scoring, limit, clauses, args)
    else:
        found, scores = bm25.top(scoring, rows.norm, limit)
    names = dict(db.execute("SELECT rowid, chunk_id FROM chunk_meta WHERE rowid IN (SELECT value FROM json_each(?))",
                            (json.dumps(found.tolist()),)))
    return [(names[r], float(s)) for r, s in zip(found.tolist(), scores.tolist(), strict=True)]


def _filtered_top(db: sqlite3.Connection, rows: postings.Rows, terms: list[bm25.Term], limit: int,
                  clauses: list[str], args: list) -> tuple[np.ndarray, np.ndarray]:
    """The top ``limit`` among rows passing the filter.

    When enough of the unfiltered top ``depth`` pass, their best are the answer: a row further down scores
    no more than any of them. So the top is taken deeper at the pass rate seen, until a filter turns out to
    pass few rows: then its own rows, found through the metadata's indexes, restrict the ranking itself.
    """
    depth = FILTER_DEPTH * limit
    while True:
        found, scores = bm25.top(terms, rows.norm, depth)
        keep = np.isin(found, _rowids(db, ["m.rowid IN (SELECT value FROM json_each(?))", *clauses],
                                      [json.dumps(found.tolist()), *args]))
        if keep.sum() >= limit or len(found) < depth:
            return found[keep][:limit], scores[keep][:limit]
        share = max(int(keep.sum()), 1) / depth
        if share * rows.count <= FEW_ROWS:
            break
        depth = int(2 * limit / share) + 1
    return bm25.top(terms, rows.norm, limit, _allowed(db, rows, clauses, args))


def _allowed(db: sqlite3.Connection, rows: postings.Rows, clauses: list[str], args: list) -> np.ndarray:
    """A mask by rowid of the rows passing ``clauses``."""
    allowed = np.zeros(len(rows.norm), dtype=bool)
    allowed[_rowids(db, clauses, args)] = True
    return allowed


def _rowids(db: sqlite3.Connection, clauses: list[str], args: list) -> np.ndarray:
    """The rowids of chunk_meta (aliased m) that pass ``clauses``, as one string: 10x faster than row by row."""
    joined = db.execute(f"SELECT group_concat(m.rowid) FROM chunk_meta m WHERE {' AND '.join(clauses)}",
                        args).fetchone()[0]
    return np.fromstring(joined, dtype=np.int64, sep=",") if joined else np.zeros(0, dtype=np.int64)


def _fts5_search(db: sqlite3.Connection, expression: str, limit: int, filters: Filters) -> list[tuple[str, float]]:
    """FTS5 ranking every match: for a generation published before our postings existed."""
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
    # The ids lead (CROSS JOIN fixes the order): without statistics the planner walked the index of a filtered
    # column instead, all 100k rows of a source nearly every chunk is in (0.35 s for 110 ids). `+k.rowid` keeps
    # a people filter's list of rows from being probed once for every id.
    sql = ("SELECT m.chunk_id FROM json_each(?) AS wanted CROSS JOIN chunk_meta k ON k.chunk_id = wanted.value "
           "CROSS JOIN chunk_meta m ON m.rowid = +k.rowid" + "".join(f" AND {c}" for c in clauses))
    return {row[0] for row in db.execute(sql, (json.dumps(list(chunk_ids)), *args))}
