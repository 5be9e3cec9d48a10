"""Our own copy of each chunk's vector, beside its metadata, so a narrow filter is scored exactly.

Chroma's filtered query costs 0.4-0.9 s at 100k chunks for one person or one month, and its HNSW
walk around everything the filter rejects misses some of the true nearest chunks. Resolving the
filter over ``chunk_meta`` and scoring the vectors of the chunks that pass takes milliseconds for a
few thousand and gives exactly the brute-force ranking. The rows are written in the manifest
transaction that writes their ``chunk_meta`` rows, and a trigger deletes them with those rows, so
the two cannot disagree.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from store.filters import Filters

SCHEMA = """
CREATE TABLE IF NOT EXISTS chunk_vectors (
    rowid INTEGER PRIMARY KEY,  -- the chunk's chunk_meta rowid
    vector BLOB NOT NULL        -- float32, as written to Chroma
);
CREATE TRIGGER IF NOT EXISTS chunk_vectors_follow_meta AFTER DELETE ON chunk_meta BEGIN
    DELETE FROM chunk_vectors WHERE rowid = old.rowid;
END;
"""

IN_MEMORY_BYTES = 256 << 20  # about 170k chunks of 384 dimensions: their vectors stay in memory
EXACT_BYTES = 64 << 20  # about 43k: below, every search scores all of them; above, Chroma's index finds the nearest
Lookup = Callable[[list[str]], dict[str, Sequence[float]]]  # chunk id -> vector, for ids the table lacks


def write(db: sqlite3.Connection, chunk_ids: Sequence[str], vectors: np.ndarray) -> None:
    """Inside the caller's transaction, after the chunks' chunk_meta rows are written."""
    db.executemany(
        "INSERT OR REPLACE INTO chunk_vectors (rowid, vector) SELECT rowid, ? FROM chunk_meta WHERE chunk_id = ?",
        [(np.asarray(vector, dtype=np.float32).tobytes(), chunk_id)
         for chunk_id, vector in zip(chunk_ids, vectors, strict=True)],
    )


def backfill(db: sqlite3.Connection, lookup: Lookup, batch: int = 5000) -> int:
    """Copy in the vectors of chunks written before this table existed (the writer calls this on open);
    returns how many. About 9 s at 100k chunks, once."""
    missing = [row[0] for row in db.execute(
        "SELECT m.chunk_id FROM chunk_meta m LEFT JOIN chunk_vectors v ON v.rowid = m.rowid WHERE v.rowid IS NULL")]
    for start in range(0, len(missing), batch):
        found = lookup(missing[start:start + batch])
        if not found:
            continue
        with db:
            write(db, list(found), np.asarray(list(found.values()), dtype=np.float32).reshape(len(found), -1))
    return len(missing)


def nearest(db: sqlite3.Connection, query: np.ndarray, n: int, filters: Filters, lookup: Lookup) -> list[str]:
    """The ``n`` chunks passing ``filters`` most similar to ``query`` (cosine), best first.

    ``lookup`` supplies the vectors this table lacks: a store written before it existed has none,
    one ingested since has those of the documents written since.
    """
    clauses, args = filters.sql()
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    kept = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'chunk_vectors'").fetchone() is not None
    column, join = ("v.vector", "LEFT JOIN chunk_vectors v ON v.rowid = m.rowid") if kept else ("NULL", "")
    rows = db.execute(f"SELECT m.chunk_id, {column} FROM chunk_meta m {join} {where}", args).fetchall()
    lacking = [chunk_id for chunk_id, blob in rows if blob is None]
    if lacking:
        found = {chunk_id: np.asarray(v, dtype=np.float32).tobytes() for chunk_id, v in lookup(lacking).items()}
        rows = [(chunk_id, blob if blob is not None else found.get(chunk_id)) for chunk_id, blob in rows]
        rows = [row for row in rows if row[1] is not None]
    if not rows:
        return []
    matrix = np.frombuffer(b"".join(blob for _, blob in rows), dtype=np.float32).reshape(len(rows), -1)
    return [rows[i][0] for i in most_similar(matrix, query, n)]


@dataclass(frozen=True)
class Stored:
    """Chunks' own vectors: their ids, keyword-index rowids and vectors (one row each), in the same order."""

    ids: list[str]
    rowids: np.ndarray
    vectors: np.ndarray


NONE_STORED = Stored([], np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32))


@dataclass(frozen=True)
class Matrix:
    """Every chunk's vector of one generation in memory (below ``IN_MEMORY_BYTES``), in rowid order.

    Below ``EXACT_BYTES`` a brute-force pass over all vectors takes a few milliseconds and is exact, where
    Chroma's embedded query costs ~8 ms even for a few hundred chunks (it reads its unflushed log each time).
    Above it, a narrow filter's chunks are still scored from memory: reading 6,000 of them from the table
    took 14-25 ms at 100k chunks, picking them out of the matrix well under one.
    """

    ids: list[str]
    rowids: np.ndarray
    vectors: np.ndarray

    @cached_property
    def places(self) -> dict[str, int]:
        return {chunk_id: i for i, chunk_id in enumerate(self.ids)}

    def stored(self, chunk_ids: Sequence[str]) -> Stored:
        at = [i for i in map(self.places.get, chunk_ids) if i is not None]
        return Stored([self.ids[i] for i in at], self.rowids[at], self.vectors[at])

    @cached_property
    def norms(self) -> np.ndarray:
        return norms(self.vectors)

    @property
    def exact(self) -> bool:
        """Whether scoring every vector per search is cheap enough to do instead of Chroma's query."""
        return self.vectors.nbytes <= EXACT_BYTES

    def nearest(self, query: np.ndarray, n: int, allowed: np.ndarray | None = None) -> list[str]:
        """The ``n`` nearest chunks, among the rowids in ``allowed`` when it is given."""
        if allowed is None:
            return [self.ids[i] for i in most_similar(self.vectors, query, n, self.norms)]
        at = np.minimum(np.searchsorted(self.rowids, allowed), len(self.rowids) - 1)
        rows = np.unique(at[self.rowids[at] == allowed])
        if not len(rows):
            return []
        return [self.ids[rows[i]] for i in most_similar(self.vectors[rows], query, n, self.norms[rows])]


def stored(db: sqlite3.Connection, chunk_ids: Sequence[str]) -> Stored:
    """The chunks' own vectors from the table (none in a store written before it existed, nor for a chunk
    written before it existed)."""
    try:
        found = db.execute("SELECT m.chunk_id, m.rowid, v.vector FROM json_each(?) AS w CROSS JOIN chunk_meta m ON "
                           "m.chunk_id = w.value JOIN chunk_vectors v ON v.rowid = m.rowid",
                           (json.dumps(list(chunk_ids)),)).fetchall()
    except sqlite3.OperationalError:  # no chunk_vectors table
        return NONE_STORED
    if not found:
        return NONE_STORED
    vectors = np.frombuffer(b"".join(blob for *_, blob in found), dtype=np.float32).reshape(len(found), -1)
    return Stored([row[0] for row in found], np.array([row[1] for row in found], dtype=np.int64), vectors)


def load_matrix(db: sqlite3.Connection) -> Matrix | None:
    """All vectors of the store, or None when they would take more than ``IN_MEMORY_BYTES`` or some are missing."""
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'chunk_vectors'").fetchone() is None:
        return None
    total = db.execute("SELECT count(*) FROM chunk_meta").fetchone()[0]
    first = db.execute("SELECT vector FROM chunk_vectors LIMIT 1").fetchone()
    if first is None or total * len(first[0]) > IN_MEMORY_BYTES:
        return None
    rows = db.execute("SELECT m.chunk_id, m.rowid, v.vector FROM chunk_meta m "
                      "JOIN chunk_vectors v ON v.rowid = m.rowid ORDER BY m.rowid").fetchall()
    if len(rows) != total:  # a store written before the table: Chroma has what this lacks
        return None
    matrix = np.frombuffer(b"".join(blob for *_, blob in rows), dtype=np.float32).reshape(len(rows), -1)
    return Matrix([row[0] for row in rows], np.array([row[1] for row in rows], dtype=np.int64), matrix)


def allowed_rowids(db: sqlite3.Connection, filters: Filters) -> np.ndarray:
    clauses, args = filters.sql()
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    return np.array([row[0] for row in db.execute(f"SELECT m.rowid FROM chunk_meta m {where}", args)],
                    dtype=np.int64)


def most_similar(matrix: np.ndarray, query: np.ndarray, n: int, row_norms: np.ndarray | None = None) -> np.ndarray:
    """Row numbers of the ``n`` rows of highest cosine similarity to ``query``, best first, ties in row order;
    ``row_norms``: the rows' norms, when they are known already.

    einsum rather than ``@``: a BLAS matrix-vector product starts threads, which stall when another
    process holds a core (16 ms instead of 0.6 ms for 6,000 rows on a busy two-core machine).
    """
    query = np.asarray(query, dtype=np.float32).reshape(-1)
    lengths = (norms(matrix) if row_norms is None else row_norms) * float(norms(query[None])[0])
    scores = np.einsum("ij,j->i", matrix, query) / np.maximum(lengths, np.finfo(np.float32).tiny)
    k = min(n, len(scores))
    best = np.argpartition(-scores, k - 1)[:k]
    return best[np.lexsort((best, -scores[best]))]


def norms(matrix: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
