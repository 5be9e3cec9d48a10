"""The read path: one search API that `corpus search` and the MCP server both call.

Hybrid retrieval: dense (Chroma) and keyword (BM25 over SQLite FTS5) each take their own top
candidates with the filters applied inside the query, then their scores are fused and each document's
passages ordered by the evidence they hold (``server.rank``; reciprocal rank fusion for a store without
its own copy of the vectors), and near-duplicate hits collapse into the best one.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import lru_cache
from typing import Literal

import numpy as np

from connectors import REGISTRY, USER_KINDS
from corpus.config import Config
from corpus.errors import CorpusError, EmptyCorpusError
from ingest.embedder import Embedder
from ingest.onnx_queries import query_encoder
from server import rank, relevance
from server.asked import Asker, QuestionHook
from server.fetch import Fetched
from server.fetch import fetch as fetch_item
from server.hits import Hit, hit_from, passage_from
from server.query_vectors import QueryVectors
from server.sources import SourceInfo, list_sources
from store import annotations, keyword, people, postings, vectors
from store.chroma import chroma_vectors
from store.filters import NO_FILTERS, Filters
from store.replica import Replica, Snapshot

MAX_LIMIT = 20  # 20 full chunks stay well under what a Claude tool result may hold
MAX_QUERY_CHARS = 2000  # a long question is a few hundred; keyword terms are capped in store.keyword too
RRF_K = 60
MAX_DEPTH = 2000  # the deepest unfiltered list checked against a filter
DEEP_CANDIDATE_COST = 8  # one candidate of a deeper unfiltered list costs about as much as scoring 8 chunks exactly
FACTS_KEPT = 64  # sources and people per (generation, access groups) a searcher remembers
PASSAGES = 3  # passages of one document a hit carries (dev questions answered by the first hit: 51% one, 61% three)
RESULT_CHARS = 1800  # what a result may carry per hit asked for, further passages, citations and fields included:
# at limit 5, 9,000 characters, within the ~2,500 tokens (characters / 4) a result should stay under
ROOM_CHARS = 18_000  # and at most this, whatever the limit: 20 hits carry about their own passages only
HIT_FIELDS = 350  # characters a hit's fields and frame add to its title, text and citation
PASSAGE_FIELDS = 100  # the same for a further passage
POOL = 60  # fused places further passages come from
STEP = 20  # fused places whose rows are read at once
SUPERSEDED_DROP = 3  # places a chunk `corpus dream` found superseded moves down: still shown, after the newer
Mode = Literal["hybrid", "dense", "keyword"]
_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="corpus-keyword")


class Searcher:
    def __init__(self, config: Config, embedder: Embedder | None = None):
        self.config = config
        self.embedder = embedder or Embedder(config.embedding.model, config.embedding.device)
        self.replica = Replica(config, self.embedder)
        self.vectors = QueryVectors(query_encoder(self.embedder, config.embedding.query_runtime),
                                    cache_size=config.server.query_cache)
        self._known: dict[tuple, object] = {}
        self.asked = QuestionHook(config)  # the question log: written off the search path

    def search(self, query: str, limit: int = 8, filters: Filters = NO_FILTERS, mode: Mode = "hybrid", *,
               cap: int = MAX_LIMIT) -> list[Hit]:
        """``cap`` bounds ``limit``; only internal callers (`corpus eval`'s recall@100) lift it."""
        return self.find(query, limit, filters, mode, cap=cap).hits

    def find(self, query: str, limit: int = 8, filters: Filters = NO_FILTERS, mode: Mode = "hybrid", *,
             cap: int = MAX_LIMIT, asker: Asker | None = None) -> relevance.Found:
        """``search``, with the verdict on whether its hits answer the query (``server.relevance``); logged
        when an ``asker`` is named (``server.asked``)."""
        query = bounded_query(query)
        limit = max(1, min(limit, cap))
        with self.replica.reading() as snapshot:
            snapshot = published(snapshot)
            hits, vector, terms = self._search(snapshot, query, limit, self._narrowed(snapshot, filters), mode)
            if hits and vector is None:  # a keyword-only search: relevance still weighs meaning
                vector = self.vectors.vector(query)
            if hits and terms is None:  # a dense-only search: relevance still weighs words
                terms = keyword.query_terms(snapshot.db, query, _view(snapshot, filters.groups))
            found = relevance.judged(snapshot, query, terms or [], vector, hits)
            self.asked(asker, query, found)
            return found

    def fetch(self, item_id: str, filters: Filters = NO_FILTERS, **options) -> Fetched:
        """A hit with its neighbours, a whole document or a meeting's stretch; see ``server.fetch``."""
        with self.replica.reading() as snapshot:
            return fetch_item(published(snapshot), item_id, filters=filters, **options)

    def sources(self, groups: Sequence[str] | None = None) -> list[SourceInfo]:
        """The sources a caller with these access groups may know of (all of them locally)."""
        with self.replica.reading() as snapshot:
            if snapshot is None:
                return list_sources(self.config, None, groups)
            return self._facts(snapshot, "sources", groups, lambda: list_sources(self.config, snapshot, groups))

    def _narrowed(self, snapshot: Snapshot, filters: Filters) -> Filters:
        """The filters as the indexes take them: a source or kind that does not exist is an error naming those
        that do (a typo must not look like "no matches"), and a name means every person it is part of."""
        _all_known("kind", filters.kinds, REGISTRY, USER_KINDS)
        if filters.sources:
            known = self._facts(snapshot, "sources", filters.groups,
                                lambda: list_sources(self.config, snapshot, filters.groups))
            _all_known("source", filters.sources, [s.name for s in known])
        if not filters.people:
            return filters
        everyone = self._facts(snapshot, "people", filters.groups, lambda: people.known(snapshot.db, filters.groups))
        keys: list[str] = []
        for name in filters.people:
            found = people.matching(name, everyone)
            if not found:
                raise CorpusError(f"no one called {name[:80]!r} in the corpus; a name matches every person it is part "
                                  "of (a first name works); list_sources shows each source's most present people")
            keys.extend(found)
        return replace(filters, people=tuple(dict.fromkeys(keys)))

    def _facts(self, snapshot: Snapshot, what: str, groups: Sequence[str] | None, count):
        """What the corpus holds for these groups, counted once per published generation."""
        key = (snapshot.generation, what, None if groups is None else tuple(groups))
        if key not in self._known:
            if len(self._known) >= FACTS_KEPT:
                self._known.clear()
            self._known[key] = count()
        return self._known[key]

    def _search(self, snapshot: Snapshot, query: str, limit: int, filters: Filters, mode: Mode
                ) -> tuple[list[Hit], np.ndarray | None, list[keyword.QueryTerm] | None]:
        """The hits, and the query's vector and terms when this search read them (relevance weighs both)."""
        candidates = min(max(limit * 5, 50), 200)
        rankings: list[list[str]] = []
        rows: dict[str, tuple[str, dict]] = {}
        # The keyword side runs beside the embedding and the vector search: SQLite and torch both let go of the GIL.
        # (each thread reads through its own connection, so `snapshot.db` is looked up in the pool thread)
        lexical = _POOL.submit(_keyword, snapshot, query, candidates, filters) if mode != "dense" else None
        vector = None
        try:
            if mode != "keyword":
                vector = self.vectors.vector(query)
                rankings.append(self._dense(snapshot, vector, candidates, filters))
        finally:  # the snapshot stays held until the keyword side is done with it too
            terms, found = lexical.result() if lexical is not None else (None, None)
        if found is not None:
            rankings.append([chunk_id for chunk_id, _ in found])
        fused = None
        if mode == "hybrid" and vector is not None and found is not None:
            fused = rank.fuse(snapshot.stored, vector, rankings[0], found)
        if fused is None:
            fused = _fuse(rankings)
        else:  # scores fused, not ranks: a passage's evidence can be weighed against them
            fused = rank.rerank(snapshot.db, terms, fused, lambda ids: _rows(snapshot, rows, ids))
        notes = visible_notes(snapshot, [chunk_id for chunk_id, _ in fused], filters.groups)
        if notes:
            fused = _down_rank(fused, notes)
        return _collapse(snapshot, fused, rows, limit, notes), vector, terms

    def _dense(self, snapshot: Snapshot, query_vector: np.ndarray, n: int, filters: Filters) -> list[str]:
        collection = snapshot.store.collection
        if collection is None:
            return []
        vector = [query_vector]
        matrix = snapshot.matrix
        if matrix is not None and matrix.exact:
            allowed = vectors.allowed_rowids(snapshot.db, filters) if filters.where() is not None else None
            return matrix.nearest(vector[0], n, allowed)
        if filters.where() is None:
            # ids only: reading 50 candidates' text and metadata took 8 of Chroma's 12 ms at 100k chunks, where
            # only the first few are shown, and those come from the reader's row cache
            return collection.query(query_embeddings=vector, n_results=n, include=[])["ids"][0]
        share, total = _passing_share(snapshot, filters)
        depth = int(n / share * 2) + 10 if share else MAX_DEPTH + 1
        if depth <= MAX_DEPTH and share * total > depth * DEEP_CANDIDATE_COST:
            # A filter many chunks pass: a deeper unfiltered list checked against our metadata costs less than
            # scoring every passing chunk, with the same hits whenever enough of the list passes.
            ids = collection.query(query_embeddings=vector, n_results=depth, include=[])["ids"][0]
            allowed = keyword.passing(snapshot.db, ids, filters)
            kept = [i for i in ids if i in allowed][:n]
            if len(kept) >= n or len(ids) < depth:
                return kept
        # Chroma's own filtered query costs 0.4-0.9 s at 100k chunks and misses some of the true nearest chunks;
        # the chunks a narrower filter passes are scored exactly from our copy of their vectors.
        if matrix is not None:
            return matrix.nearest(vector[0], n, vectors.allowed_rowids(snapshot.db, filters))
        return vectors.nearest(snapshot.db, vector[0], n, filters, lambda ids: chroma_vectors(collection, ids))


def _keyword(snapshot: Snapshot, query: str, candidates: int,
             filters: Filters) -> tuple[list[keyword.QueryTerm], list[tuple[str, float]]]:
    """The query's terms and the keyword side's candidates, read once: ranking and relevance weigh the terms."""
    db = snapshot.db
    view = _view(snapshot, filters.groups)
    terms = keyword.query_terms(db, query, view)
    return terms, keyword.search(db, query, candidates, filters, terms, view)


_SHARES: dict[tuple, tuple[float, int]] = {}  # a published generation never changes, so neither do its counts
SHARES_KEPT = 1024
_VIEWS: dict[tuple, postings.Rows | None] = {}
VIEWS_KEPT = 8  # each about 9 bytes a chunk (which rows it may read, BM25's length norms): 72 MB at 1M chunks


def _view(snapshot: Snapshot, groups: Sequence[str] | None) -> postings.Rows | None:
    """The keyword index as a caller with these groups sees it (``keyword.readable``), once per generation: the
    groups are checked chunk by chunk (14–25 ms at 100k chunks)."""
    if groups is None:
        return None
    key = (snapshot.generation, tuple(groups))
    if key not in _VIEWS:
        if len(_VIEWS) >= VIEWS_KEPT:
            _VIEWS.clear()
        _VIEWS[key] = keyword.readable(snapshot.db, groups)
    return _VIEWS[key]


def _passing_share(snapshot: Snapshot, filters: Filters) -> tuple[float, int]:
    """(share of chunks passing the filters, all chunks), counted once per generation and filter: access groups
    alone, which every remote search carries, are checked chunk by chunk (27 ms at 100k chunks)."""
    clauses, args = filters.sql()
    key = (snapshot.generation, tuple(clauses), tuple(args))
    if key not in _SHARES:
        if len(_SHARES) >= SHARES_KEPT:
            _SHARES.clear()
        _SHARES[key] = (keyword.share_matching(snapshot.db, filters), snapshot.store.count())
    return _SHARES[key]


def _all_known(what: str, given: Sequence[str], valid: Collection[str], shown: Sequence[str] | None = None) -> None:
    """``shown``: the valid values an error names, when some are internal."""
    unknown = [value for value in given if value not in valid]
    if unknown:
        names = ", ".join(valid if shown is None else shown) or "none"
        raise CorpusError(f"unknown {what} {unknown[0][:80]!r}; the {what}s are: {names}")


def published(snapshot: Snapshot | None) -> Snapshot:
    if snapshot is None:
        raise EmptyCorpusError("the corpus is empty: nothing has been ingested and published yet; "
                               "run `corpus ingest` first")
    return snapshot


def bounded_query(query: str) -> str:
    """A query a person or a model would write; a huge one would scan the keyword index for minutes."""
    query = query.strip()
    if not query:
        raise CorpusError("the query is empty; pass a few words describing what you are looking for")
    if len(query) > MAX_QUERY_CHARS:
        raise CorpusError(f"the query is {len(query):,} characters long; the limit is {MAX_QUERY_CHARS:,}. "
                          "Search for the key words or one question at a time")
    return query


def visible_notes(snapshot: Snapshot, chunk_ids: list[str], groups: Sequence[str] | None) -> dict[str, list]:
    """`corpus dream` notes on these chunks, without those naming a chunk the caller may not read."""
    notes = annotations.for_chunks(snapshot.db, chunk_ids)
    if groups is None or not notes:
        return notes
    others = list({a.other_chunk_id for found in notes.values() for a in found})
    readable = keyword.passing(snapshot.db, others, Filters(groups=groups))
    kept = {chunk_id: [a for a in found if a.other_chunk_id in readable] for chunk_id, found in notes.items()}
    return {chunk_id: found for chunk_id, found in kept.items() if found}


def _fuse(rankings: list[list[str]]) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: robust to the two retrievers' incomparable score scales."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for place, chunk_id in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (RRF_K + place)
    return sorted(scores.items(), key=lambda kv: kv[1], reverse=True)


def _down_rank(fused: list[tuple[str, float]], notes: dict[str, list]) -> list[tuple[str, float]]:
    """Superseded chunks move a few places down (fused scores are too close together to scale)."""
    ranked = list(fused)
    for chunk_id, score in fused:
        if any(a.relation == annotations.DOWN_RANKED for a in notes.get(chunk_id, ())):
            at = ranked.index((chunk_id, score))
            ranked.insert(min(at + SUPERSEDED_DROP, len(ranked) - 1), ranked.pop(at))
    return ranked


def _collapse(snapshot: Snapshot, fused: list[tuple[str, float]], rows: dict, limit: int,
              notes: dict[str, list]) -> list[Hit]:
    """Top hits, each a document's best passage with up to ``PASSAGES - 1`` more of that document from the first
    ``POOL`` places (a document with more gets another hit). A near-duplicate (the same text in two places) folds
    into the passage it repeats. Further passages join in fused order while the result stays within
    ``RESULT_CHARS`` a hit and ``ROOM_CHARS`` in all, every hit's own passage counted first."""
    groups: list[list[str]] = []  # chunk ids per hit, its own passage first
    filling: dict[str, int] = {}  # document -> the group its next passage joins
    kept: list[tuple[frozenset[str], int]] = []  # each passage taken: its words, its group
    folded: dict[int, list[str]] = {}
    position = 0
    while position < len(fused) and (len(groups) < limit or position < POOL):
        window = [chunk_id for chunk_id, _ in fused[position:position + STEP]]
        # once the hits are all there, only their documents' passages are read
        _rows(snapshot, rows, window if len(groups) < limit else [c for c in window if _document(c) in filling])
        for offset, chunk_id in enumerate(window, start=position):
            group = filling.get(_document(chunk_id))
            joins = group is not None and len(groups[group]) < PASSAGES and offset < POOL
            if chunk_id not in rows or not joins and len(groups) >= limit:
                continue
            text, meta = rows[chunk_id]
            words = _words(text)
            twin = next((n for seen, n in kept if _similar(words, seen)), None)
            if twin is not None:
                folded.setdefault(twin, []).append(meta.get("citation_uri", ""))
                continue
            if joins:
                groups[group].append(chunk_id)
            else:
                group = filling[_document(chunk_id)] = len(groups)
                groups.append([chunk_id])
            kept.append((words, group))
        position += len(window)
    room = min(RESULT_CHARS * limit, ROOM_CHARS) - sum(_size(*rows[group[0]]) + HIT_FIELDS for group in groups)
    more: dict[str, list[str]] = {}
    for chunk_id in (chunk_id for chunk_id, _ in fused[:POOL]):  # fused order: the best further passages first
        group = next((g for g in groups if chunk_id in g[1:]), None)
        if group is not None and _size(*rows[chunk_id]) + PASSAGE_FIELDS <= room:
            room -= _size(*rows[chunk_id]) + PASSAGE_FIELDS
            more.setdefault(group[0], []).append(chunk_id)
    scores = dict(fused)
    hits = []
    for n, group in enumerate(groups):
        lead = group[0]
        passages = [passage_from(chunk_id, *rows[chunk_id]) for chunk_id in more.get(lead, [])]
        for passage in passages:
            passage.notes.extend(a.note() for a in notes.get(passage.id, ()))
        hits.append(hit_from(lead, *rows[lead], scores[lead], passages))
        hits[-1].duplicates.extend(folded.get(n, []))
        hits[-1].notes.extend(a.note() for a in notes.get(lead, ()))
    return hits


def _document(chunk_id: str) -> str:
    return chunk_id.rpartition(":")[0]  # chunk ids are "<doc_id>:<ordinal>" (corpus.records.chunk_id)


def _size(text: str, meta: dict) -> int:
    """The characters a passage puts in a result, beside its fields' names."""
    return sum(len(part) for part in (text, meta.get("title", ""), meta.get("section") or "",
                                       meta.get("citation_uri", ""), meta.get("citation_label", "")))


def _rows(snapshot: Snapshot, rows: dict, chunk_ids: list[str]) -> dict:
    """``rows`` with the (text, metadata) of these chunks added where missing."""
    missing = [chunk_id for chunk_id in chunk_ids if chunk_id not in rows]
    if missing:
        rows.update(snapshot.vectors.rows(missing))
    return rows


_WORDS = re.compile(r"\w+")


@lru_cache(maxsize=2048)  # the passages that come up again and again: a regex over each costs more than the rest
def _words(text: str) -> frozenset[str]:
    return frozenset(_WORDS.findall(text.lower()))


def _similar(a: frozenset[str], b: frozenset[str]) -> bool:
    return bool(a) and bool(b) and len(a & b) / len(a | b) >= 0.85
