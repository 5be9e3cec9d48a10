"""Our own postings for the keyword index: for each term, the rows that hold it and how often, in segments.

FTS5 can only rank by scoring every row that matches, and its bm25() counts each term's rows again on every
query: 50-150 ms at 100k chunks for a natural question. These sorted arrays let ``store.keyword`` score a
top-k in bulk and skip what cannot enter it. They live in the manifest beside the FTS5 rows and are written
in the same transactions, so a crash leaves both before or both after; FTS5 itself tokenises for them (a
temp table with the same tokenizer), so their BM25 is FTS5's bm25() to the last bit.

Each write adds a segment: its rows' token counts, and one row of arrays per term. Rowids only grow, so
segments cover increasing, disjoint rowid ranges and a term's arrays, read in segment order, come out
sorted. A deleted row stays in its segment behind a tombstone until the segment is rewritten: the newest
segments merge once ``MERGE_AT`` of them pile up, and a segment half dead is rewritten alone.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from store import bm25

TOKENIZER = "porter unicode61 remove_diacritics 2"
MERGE_AT = 8
GROWTH = 4
STEP_BYTES = 16 << 20  # rowid bytes merged per round trip: bounds the memory a merge of big segments holds
STEP_TERMS = 1000
CACHED = 4  # versions of the row lengths kept in memory (a reader holds at most a few generations)

SCHEMA = """
CREATE TABLE IF NOT EXISTS kw_segments (
    id INTEGER PRIMARY KEY,
    last INTEGER NOT NULL,
    docs INTEGER NOT NULL,
    rowids BLOB NOT NULL,
    lengths BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS kw_postings (
    term TEXT NOT NULL,
    segment INTEGER NOT NULL,
    rowids BLOB NOT NULL,
    tfs BLOB NOT NULL,
    PRIMARY KEY (term, segment)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kw_postings_segment ON kw_postings(segment);
CREATE TABLE IF NOT EXISTS kw_dead (rowid INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS kw_state (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class Rows:
    """The indexed rows at one version of the index: token counts by rowid, and which rows are live."""

    lengths: np.ndarray  # float64 by rowid; 0 where no row
    live: np.ndarray  # bool by rowid
    any_dead: bool

    @cached_property
    def count(self) -> int:
        return int(self.live.sum())

    @cached_property
    def average_length(self) -> float:
        return float(self.lengths[self.live].sum()) / self.count if self.count else 1.0

    @cached_property
    def norm(self) -> np.ndarray:
        """BM25's length normalisation ``k1 (1 - b + b dl / avgdl)`` by rowid."""
        return bm25.norms(self.lengths, self.average_length)

    def within(self, readable: np.ndarray) -> Rows:
        """These rows as a caller who may read only the ``readable`` ones (a mask by rowid, as long as ``live``)
        sees them: their count, lengths and postings, so no statistic counts a row that caller may not read."""
        return Rows(self.lengths, self.live & readable, True)

    def postings(self, db: sqlite3.Connection, term: str) -> tuple[np.ndarray, np.ndarray]:
        """(rowids ascending, term frequencies) of the live rows holding ``term``."""
        parts = db.execute("SELECT rowids, tfs FROM kw_postings WHERE term = ? ORDER BY segment", (term,)).fetchall()
        rowids = _concat([_rowids(r) for r, _ in parts], np.intp)  # numpy indexes with intp: convert once
        tfs = _concat([_unpack(t, len(r) // 4) for r, t in parts], np.uint32)
        if self.any_dead and len(rowids):
            keep = self.live[rowids]
            rowids, tfs = rowids[keep], tfs[keep]
        return rowids, tfs


_cache: OrderedDict[tuple[str, str], Rows] = OrderedDict()
_cache_lock = threading.Lock()


def version(db: sqlite3.Connection) -> str | None:
    """Changes with every write; None for a store written before these postings existed."""
    try:
        found = db.execute("SELECT value FROM kw_state WHERE key = 'version'").fetchone()
    except sqlite3.OperationalError:  # an older generation: no such table
        return None
    return found[0] if found else None


def rows(db: sqlite3.Connection) -> Rows | None:
    """The indexed rows, or None for a store written before these postings existed (read FTS5 alone)."""
    current = version(db)
    if current is None:
        return None
    path = db.execute("PRAGMA database_list").fetchone()[2]
    key = (path, current)
    with _cache_lock:
        if path and key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    loaded = _load(db)
    if path:
        with _cache_lock:
            _cache[key] = loaded
            while len(_cache) > CACHED:
                _cache.popitem(last=False)
    return loaded


def _load(db: sqlite3.Connection) -> Rows:
    segments = db.execute("SELECT rowids, lengths FROM kw_segments ORDER BY id").fetchall()
    rowids = _concat([_rowids(r) for r, _ in segments], np.intp)
    counts = _concat([_unpack(n, len(r) // 4) for r, n in segments], np.uint32)
    size = int(rowids[-1]) + 1 if len(rowids) else 1
    lengths = np.zeros(size)
    lengths[rowids] = counts
    live = np.zeros(size, dtype=bool)
    live[rowids] = True
    dead = np.fromiter((r for (r,) in db.execute("SELECT rowid FROM kw_dead")), dtype=np.int64)
    live[dead[dead < size]] = False
    return Rows(lengths, live, bool(len(dead)))


# -- tokenising ------------------------------------------------------------------------------------------


_WORD_TOKENS: dict[str, tuple[str, ...]] = {}  # the tokenizer never changes, so neither does a word's tokens
WORDS_KEPT = 50_000


def word_tokens(db: sqlite3.Connection, words: Sequence[str]) -> list[tuple[str, ...]]:
    """Each word's tokens as FTS5 makes them from a quoted word in a query (stemmed; none, one or more)."""
    known = {word: _WORD_TOKENS.get(word) for word in words}
    new = [word for word, tokens in known.items() if tokens is None]
    if new:
        made: list[list[str]] = [[] for _ in new]
        with _tokenised(db, list(enumerate(new))):
            for doc, term in db.execute("SELECT doc, term FROM temp.kw_token_list ORDER BY doc, offset"):
                made[doc].append(term)
        known.update(zip(new, map(tuple, made), strict=True))
        if len(_WORD_TOKENS) + len(new) > WORDS_KEPT:
            _WORD_TOKENS.clear()
        _WORD_TOKENS.update((word, known[word]) for word in new)
    return [known[word] for word in words]


_TEXT_TOKENS: dict[str, dict[str, tuple[int, ...]]] = {}  # a passage's tokens and their offsets, by its text
TEXTS_KEPT = 2048  # about 15 kB each: the passages that come up again and again


def positions(db: sqlite3.Connection, texts: Sequence[str], terms: Sequence[str]) -> list[list[tuple[int, str]]]:
    """Where each of ``terms`` (tokens as the index has them) occurs in each text: (token offset, term), in order.

    A text is tokenised once and remembered: the same passages come up for many searches.
    """
    offsets = [_TEXT_TOKENS.get(text) for text in texts]
    new = [i for i, found in enumerate(offsets) if found is None]
    if new:
        made: list[dict[str, list[int]]] = [{} for _ in new]
        with _tokenised(db, [(j, texts[i]) for j, i in enumerate(new)]):
            for doc, term, offset in db.execute("SELECT doc, term, offset FROM temp.kw_token_list"):
                made[doc].setdefault(term, []).append(offset)
        if len(_TEXT_TOKENS) + len(new) > TEXTS_KEPT:
            _TEXT_TOKENS.clear()
        for j, i in enumerate(new):
            offsets[i] = _TEXT_TOKENS[texts[i]] = {term: tuple(sorted(at)) for term, at in made[j].items()}
    return [sorted((offset, term) for term in dict.fromkeys(terms) for offset in found.get(term, ()))
            for found in offsets]


class _tokenised:
    """``texts`` (rowid, text) in a temp FTS5 table with the index's tokenizer, emptied on the way out."""

    def __init__(self, db: sqlite3.Connection, texts: Sequence[tuple[int, str]]):
        self.db, self.texts = db, texts

    def __enter__(self) -> None:
        self.db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.kw_tokens USING fts5("
                        f"text, tokenize = '{TOKENIZER}', content = '')")
        self.db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.kw_token_list "
                        "USING fts5vocab(temp, kw_tokens, instance)")
        self.db.executemany("INSERT INTO temp.kw_tokens (rowid, text) VALUES (?, ?)", self.texts)

    def __exit__(self, *exc: object) -> None:
        self.db.execute("INSERT INTO temp.kw_tokens (kw_tokens) VALUES ('delete-all')")


# -- writing (inside the caller's transaction) -------------------------------------------------------------


def last_rowid(db: sqlite3.Connection) -> int:
    """The highest rowid any segment covers: new rows must come above it (0 when there are none)."""
    return db.execute("SELECT coalesce(max(last), 0) FROM kw_segments").fetchone()[0]


def add(db: sqlite3.Connection, texts: Sequence[tuple[int, str]]) -> None:
    """Index new rows (rowid, text), rowids ascending and above ``last_rowid``, as one new segment."""
    if not texts:
        return
    rowids = np.array([rowid for rowid, _ in texts], dtype=np.int64)
    with _tokenised(db, texts):
        found = db.execute("SELECT term, doc, count(*) FROM temp.kw_token_list GROUP BY term, doc "
                           "ORDER BY term, doc").fetchall()
    terms = [term for term, _, _ in found]
    docs = np.fromiter((doc for _, doc, _ in found), dtype=np.int64, count=len(found))
    tfs = np.fromiter((n for _, _, n in found), dtype=np.int64, count=len(found))
    lengths = np.zeros(len(rowids), dtype=np.int64)
    np.add.at(lengths, np.searchsorted(rowids, docs), tfs)
    first = int(rowids[0])
    db.execute("INSERT INTO kw_segments (id, last, docs, rowids, lengths) VALUES (?, ?, ?, ?, ?)",
               (first, int(rowids[-1]), len(rowids), _pack_rowids(rowids), _pack(lengths)))
    starts = [0, *(i for i in range(1, len(terms)) if terms[i] != terms[i - 1])]
    ends = [*starts[1:], len(terms)]
    db.executemany("INSERT INTO kw_postings (term, segment, rowids, tfs) VALUES (?, ?, ?, ?)",
                   ((terms[s], first, _pack_rowids(docs[s:e]), _pack(tfs[s:e]))
                    for s, e in zip(starts, ends, strict=True) if e > s))
    _maintain(db)


def kill(db: sqlite3.Connection, rowids: Sequence[int]) -> None:
    """Rows deleted: their postings stop counting now and are dropped when their segment is rewritten."""
    if not rowids:
        return
    db.executemany("INSERT OR IGNORE INTO kw_dead (rowid) VALUES (?)", [(r,) for r in rowids])
    _maintain(db)


def clear(db: sqlite3.Connection) -> None:
    """Every row deleted."""
    for table in ("kw_segments", "kw_postings", "kw_dead"):
        db.execute(f"DELETE FROM {table}")
    changed(db)


def changed(db: sqlite3.Connection) -> None:
    """A new version: readers' cached row lengths are keyed by it (random, so a rolled-back one never recurs)."""
    db.execute("INSERT OR REPLACE INTO kw_state (key, value) VALUES ('version', ?)", (os.urandom(8).hex(),))


def _maintain(db: sqlite3.Connection) -> None:
    """Rewrite a half-dead segment, or merge the newest ones, until neither is due."""
    changed(db)
    while True:
        segments = db.execute("SELECT id, last, docs FROM kw_segments ORDER BY id").fetchall()
        dead = dict(db.execute("SELECT s.id, count(*) FROM kw_segments s JOIN kw_dead d "
                               "ON d.rowid BETWEEN s.id AND s.last GROUP BY s.id"))
        half_dead = [s for s in segments if dead.get(s[0], 0) * 2 >= s[2]]
        newest = _newest_to_merge([docs for _, _, docs in segments])
        if half_dead:
            _merge(db, half_dead[:1])
        elif newest:
            _merge(db, segments[-newest:])
        else:
            return


def _newest_to_merge(sizes: list[int]) -> int:
    """How many of the newest segments to merge: the most, at least ``MERGE_AT``, none above 1/GROWTH of their total.

    So a segment is rewritten only into one at least ``GROWTH`` times its size (each row is rewritten a
    logarithmic number of times), and a big old segment is never rewritten to take in a few small ones.
    """
    for count in range(len(sizes), MERGE_AT - 1, -1):
        run = sizes[-count:]
        if max(run) * GROWTH <= sum(run):
            return count
    return 0


def _merge(db: sqlite3.Connection, segments: list[tuple[int, int, int]]) -> None:
    """Adjacent segments become one (under the first one's id), without the dead rows' postings."""
    first, last = segments[0][0], segments[-1][1]
    ids = [s[0] for s in segments]
    within = f"segment IN ({','.join('?' * len(ids))})"
    dead = np.fromiter((r for (r,) in db.execute("SELECT rowid FROM kw_dead WHERE rowid BETWEEN ? AND ?",
                                                 (first, last))), dtype=np.int64)
    parts = db.execute(f"SELECT rowids, lengths FROM kw_segments WHERE id IN ({','.join('?' * len(ids))}) "
                       "ORDER BY id", ids).fetchall()
    rowids, lengths = _live(_concat([_rowids(r) for r, _ in parts], np.intp),
                            _concat([_unpack(n, len(r) // 4) for r, n in parts], np.uint32), dead)
    db.execute(f"DELETE FROM kw_segments WHERE id IN ({','.join('?' * len(ids))})", ids)
    db.execute("DELETE FROM kw_dead WHERE rowid BETWEEN ? AND ?", (first, last))
    if len(rowids):
        db.execute("INSERT INTO kw_segments (id, last, docs, rowids, lengths) VALUES (?, ?, ?, ?, ?)",
                   (first, last, len(rowids), _pack_rowids(rowids), _pack(lengths)))
    sizes = db.execute(f"SELECT term, sum(length(rowids)) FROM kw_postings WHERE {within} GROUP BY term", ids)
    for step in _steps(sizes.fetchall()):
        these = f"term IN ({','.join('?' * len(step))}) AND {within}"
        found = db.execute(f"SELECT term, rowids, tfs FROM kw_postings WHERE {these} ORDER BY term, segment",
                           (*step, *ids)).fetchall()
        db.execute(f"DELETE FROM kw_postings WHERE {these}", (*step, *ids))
        merged: dict[str, tuple[list, list]] = {}
        for term, r, t in found:
            arrays = merged.setdefault(term, ([], []))
            arrays[0].append(_rowids(r))
            arrays[1].append(_unpack(t, len(r) // 4))
        rows = []
        for term, (r_parts, t_parts) in merged.items():
            r, t = _live(np.concatenate(r_parts), np.concatenate(t_parts), dead)
            if len(r):
                rows.append((term, first, _pack_rowids(r), _pack(t)))
        db.executemany("INSERT INTO kw_postings (term, segment, rowids, tfs) VALUES (?, ?, ?, ?)", rows)


def _live(rowids: np.ndarray, values: np.ndarray, dead: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if not len(dead):
        return rowids, values
    alive = ~np.isin(rowids, dead)
    return rowids[alive], values[alive]


def _steps(sizes: list[tuple[str, int]]) -> list[list[str]]:
    """Terms in groups of about ``STEP_BYTES`` of postings (and at most ``STEP_TERMS`` terms, each a
    parameter), so a merge of big segments holds little at once."""
    steps: list[list[str]] = [[]]
    total = 0
    for term, size in sizes:
        if total >= STEP_BYTES or len(steps[-1]) >= STEP_TERMS:
            steps.append([])
            total = 0
        steps[-1].append(term)
        total += size
    return [step for step in steps if step]


# -- arrays in blobs ---------------------------------------------------------------------------------------


def _pack_rowids(rowids: np.ndarray) -> bytes:
    return rowids.astype("<u4").tobytes()


def _rowids(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<u4")


def _pack(values: np.ndarray) -> bytes:
    """Counts in the narrowest unsigned width that holds them: the blob's length over the row count says which."""
    top = int(values.max()) if len(values) else 0
    width = 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4
    return values.astype(f"<u{width}").tobytes()


def _unpack(blob: bytes, count: int) -> np.ndarray:
    return np.frombuffer(blob, dtype=f"<u{len(blob) // count}") if count else np.zeros(0, dtype=np.uint8)


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts, dtype=dtype) if parts else np.zeros(0, dtype=dtype)
