"""Keyword search ranks exactly as FTS5's bm25() over every match would, while skipping what cannot make the top."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from corpus.records import Chunk, Citation, Document, Locator, chunk_id, document_id
from store import bm25, keyword, postings
from store.filters import NO_FILTERS, Filters

PEOPLE = ("Ada Lovelace", "Grace Hopper", "Alan Turing", "Radia Perlman", "Ken Thompson", "Barbara Liskov")
SOURCES = {"handbook": (), "hr": ("hr",), "eng": ("eng", "ops")}
# Real words with their inflections (the porter stemmer folds them), a phrase FTS5 splits, accented words.
WORDS = ("policy policies review reviews reviewed reviewing deploy deployment deploying release rollback "
         "expense expenses receipt travel travelling meal hotel limit report reports incident escalation pager "
         "vacation leave holiday approval manager access request database analytics permission onboarding laptop "
         "backup restore snapshot payroll salary contract vendor budget cloud costs password security checklist "
         "the and of to in is for on with that this it as at by from be are was or an").split()
START = datetime(2020, 1, 1, tzinfo=UTC)


def _vocabulary(rng: random.Random) -> list[str]:
    syllables = ["ka", "lo", "mi", "ter", "zu", "ran", "vel", "po", "dis", "qua", "ne", "sor"]
    made = {"".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(700)}
    return [*WORDS, *sorted(made)]


def _text(rng: random.Random, vocabulary: list[str], weights: list[float]) -> str:
    words = rng.choices(vocabulary, weights, k=rng.randint(5, 400))
    if rng.random() < 0.05:
        words[rng.randrange(len(words))] = "foo bar"  # the phrase the query word foo_bar stands for
    if rng.random() < 0.05:
        words.append("Café")
    return " ".join(words)


def _document(rng: random.Random, vocabulary: list[str], weights: list[float], number: int,
              source: str) -> tuple[Document, list[Chunk]]:
    native = f"doc-{number}.md"
    doc_id = document_id(source, native)
    doc = Document(id=doc_id, source=source, kind="docs", native_id=native, title=f"Doc {number}",
                   citation=Citation(f"file:///{native}", native), blocks=(), digest=str(rng.random()),
                   updated=START + timedelta(days=rng.randint(0, 1800)),
                   authors=tuple(rng.sample(PEOPLE, rng.randint(1, 2))), access=SOURCES[source])
    chunks = [Chunk(id=chunk_id(doc_id, i), doc_id=doc_id, ordinal=i, text=_text(rng, vocabulary, weights),
                    header=f"Doc {number}", locator=Locator(), citation=doc.citation,
                    people=(rng.choice(PEOPLE),) if rng.random() < 0.2 else ())
              for i in range(rng.randint(1, 12))]
    return doc, chunks


def _write(db: sqlite3.Connection, docs: list[tuple[Document, list[Chunk]]]) -> None:
    with db:
        keyword.replace_documents(db, docs)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A few thousand chunks written in batches of all sizes, then partly rewritten, deleted and added to."""
    path = tmp_path_factory.mktemp("keyword") / "manifest.sqlite"
    rng = random.Random(13)
    vocabulary = _vocabulary(rng)
    weights = [1 / (rank + 2) ** 1.1 for rank in range(len(vocabulary))]
    db = sqlite3.connect(path)
    db.executescript(keyword.SCHEMA)
    number = 0
    written = []
    while number < 360:
        batch = [_document(rng, vocabulary, weights, number + i, rng.choice(list(SOURCES)))
                 for i in range(rng.choice([1, 2, 5, 30]))]
        number += len(batch)
        _write(db, batch)
        written.extend(batch)
    for doc, _ in rng.sample(written, 60):  # changed documents: new chunks under the same ids
        _write(db, [_document(rng, vocabulary, weights, int(doc.native_id[4:-3]), doc.source)])
    with db:
        keyword.delete_documents(db, [doc.id for doc, _ in rng.sample(written, 40)])
    _write(db, [_document(rng, vocabulary, weights, 1000 + i, "handbook") for i in range(20)])
    db.close()
    return path


def _reader(path: Path) -> sqlite3.Connection:
    """As a search reads a published generation: read-only and immutable."""
    return sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True)


def _every_match(db: sqlite3.Connection, query: str, filters: Filters) -> list[tuple[str, float]]:
    """FTS5 scoring every row that matches and passes the filters, best first."""
    expression = keyword.match_expression(query)
    if expression is None:
        return []
    clauses, args = filters.sql()
    found = db.execute("SELECT m.chunk_id, -bm25(chunk_text) FROM chunk_text JOIN chunk_meta m ON m.rowid = "
                       f"chunk_text.rowid WHERE {' AND '.join(['chunk_text MATCH ?', *clauses])}",
                       (expression, *args)).fetchall()
    return sorted(found, key=lambda row: -row[1])


def _assert_same_top(db: sqlite3.Connection, query: str, limit: int, filters: Filters = NO_FILTERS) -> None:
    every = _every_match(db, query, filters)
    want, got = every[:limit], keyword.search(db, query, limit, filters)
    assert np.allclose([s for _, s in got], [s for _, s in want], rtol=1e-9), (query, limit, filters)
    exact = dict(every)
    assert all(np.isclose(exact[c], s, rtol=1e-9) for c, s in got), "a hit with another score than FTS5's"
    if want:  # the same hits, except which of those tied at the cut
        above_cut = {c for c, s in want if s > want[-1][1] * (1 + 1e-9)}
        assert above_cut <= {c for c, _ in got}


QUERIES = ("how do I submit an expense report for travel", "review reviews policy", "the and of", "deploy rollback",
           "zzzunknown", "foo_bar policy", "café naïve hotel", "what is the password policy for the database",
           "access request approval manager laptop onboarding backup restore payroll salary")


def _random_queries(count: int) -> list[str]:
    rng = random.Random(7)
    vocabulary = _vocabulary(random.Random(13))
    return [" ".join(rng.sample(vocabulary[:60], rng.randint(1, 3)) + rng.sample(vocabulary, rng.randint(0, 3)))
            for _ in range(count)]


FILTERS = (NO_FILTERS, Filters(sources=["hr"]), Filters(people=["Ada Lovelace"]),
           Filters(after=START + timedelta(days=300), before=START + timedelta(days=330)),
           Filters(groups=["eng"]), Filters(sources=["handbook", "eng"], after=START + timedelta(days=900)),
           Filters(people=["Ken Thompson"], groups=[]))


@pytest.mark.parametrize("query", [*QUERIES, *_random_queries(30)])
def test_top_k_is_fts5_ranking_every_match(store, query):
    db = _reader(store)
    for limit in (1, 10, 50, 200):
        _assert_same_top(db, query, limit)


@pytest.mark.slow
@pytest.mark.parametrize("filters", FILTERS, ids=range(len(FILTERS)))
def test_filters_apply_inside_the_top_k(store, filters):
    db = _reader(store)
    for query in (*QUERIES, *_random_queries(10)):
        for limit in (5, 50):
            _assert_same_top(db, query, limit, filters)


def test_a_row_with_only_common_words_still_makes_the_top(tmp_path):
    """The rare word is scored first; rows holding only the commoner one must not be skipped when they win."""
    db = sqlite3.connect(tmp_path / "m.sqlite")
    db.executescript(keyword.SCHEMA)
    rng = random.Random(1)
    filler = [f"w{i}" for i in range(300)]
    texts = ([" ".join(["zyzzyva", *rng.choices(filler, k=400)]) for _ in range(40)]  # rare, in long chunks
             + [" ".join(["policy"] * (20 + 30 * n)) for n in range(15)]  # the commoner word, many times
             + [" ".join(["policy", *rng.choices(filler, k=100)]) for _ in range(900)]
             + [" ".join(rng.choices(filler, k=100)) for _ in range(3000)])
    docs = []
    for n, text in enumerate(texts):
        doc = Document(id=f"d{n}", source="s", kind="docs", native_id=str(n), title="", blocks=(), digest="",
                       citation=Citation("file:///x", "x"))
        docs.append((doc, [Chunk(id=f"d{n}:0", doc_id=doc.id, ordinal=0, text=text, header="", locator=Locator(),
                                 citation=doc.citation)]))
    _write(db, docs)
    top = keyword.search(db, "zyzzyva policy", 10)
    assert all(int(c[1:-2]) in range(40, 55) for c, _ in top)
    _assert_same_top(db, "zyzzyva policy", 10)


@pytest.mark.parametrize("seed", range(60))
def test_pruned_top_equals_scoring_every_row(seed):
    rng = np.random.default_rng(seed)
    size = int(rng.integers(20, 4000))
    norm = bm25.norms(rng.integers(1, 400, size).astype(float), 120.0)
    terms = []
    for _ in range(int(rng.integers(1, 8))):
        rowids = np.sort(rng.choice(size, int(rng.integers(1, size)), replace=False))
        tfs = rng.geometric(0.4, len(rowids))
        terms.append(bm25.Term(rowids, bm25.idf(size, len(rowids)) * int(rng.integers(1, 3)), tfs=tfs))
    if seed % 4 == 0:  # a phrase: FTS5's scores, given
        rowids = np.sort(rng.choice(size, int(rng.integers(1, 50)), replace=False))
        terms.append(bm25.Term(rowids, 1.0, scores=rng.uniform(0.1, 9.0, len(rowids))))
    allowed = rng.random(size) < rng.uniform(0.01, 0.9) if seed % 3 == 0 else None
    depth = int(rng.integers(1, 300))

    found, scores = bm25.top(terms, norm, depth, allowed)
    every = np.zeros(size)
    matched = np.zeros(size, dtype=bool)
    for term in terms:
        every[term.rowids] += term.score(slice(None), norm)
        matched[term.rowids] = True
    if allowed is not None:
        matched &= allowed
    assert np.allclose(scores, np.sort(every[matched])[::-1][:depth])
    assert np.allclose(every[found], scores) and matched[found].all()


def test_deletes_leave_at_most_as_many_dead_postings_as_live_ones(store):
    db = _reader(store)
    segments = db.execute("SELECT count(*) FROM kw_segments").fetchone()[0]
    live = postings.rows(db).count
    stored = db.execute("SELECT sum(length(rowids)) / 4 FROM kw_segments").fetchone()[0]
    assert live == db.execute("SELECT count(*) FROM chunk_meta").fetchone()[0]
    assert segments <= 3 * postings.MERGE_AT and stored <= 2 * live


def test_a_store_from_before_the_postings_is_searched_by_fts5_then_migrated(store, tmp_path):
    old = tmp_path / "old.sqlite"
    with sqlite3.connect(store) as source, sqlite3.connect(old) as target:
        source.backup(target)
    db = sqlite3.connect(old)
    for table in ("kw_segments", "kw_postings", "kw_dead", "kw_state"):
        db.execute(f"DROP TABLE {table}")
    db.commit()
    query = "how do I submit an expense report for travel"
    assert keyword.search(db, query, 20) == _every_match(db, query, NO_FILTERS)[:20]
    db.executescript(keyword.SCHEMA)  # the writer's open
    keyword.migrate(db)
    assert postings.rows(db).count == db.execute("SELECT count(*) FROM chunk_meta").fetchone()[0]
    _assert_same_top(db, query, 20)
    _assert_same_top(db, "review reviews policy", 50, Filters(people=["Ada Lovelace"]))
