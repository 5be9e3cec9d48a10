"""Reading beyond a hit: a whole document (paged), a chunk with its neighbours, or a stretch of a meeting.

A conversation (a Slack channel) is stored as many documents; reading on from a chunk near one's edge
continues into the chunks said just before or after it in the channel, whichever documents hold them.
"""

from __future__ import annotations

from dataclasses import dataclass

from corpus.errors import CorpusError
from server.hits import hit_from
from store import timeline
from store.filters import NO_FILTERS, Filters
from store.replica import Snapshot

PAGE_CHARS = 12_000  # about 3k tokens a page: well under what a Claude tool result may hold


@dataclass(frozen=True)
class Fetched:
    id: str
    doc_id: str
    title: str
    kind: str
    source: str
    date: str | None
    citation: str
    citation_label: str
    text: str
    page: int
    pages: int
    first_chunk: int
    last_chunk: int
    date_source: str | None = None


def fetch(snapshot: Snapshot | None, item_id: str, page: int = 1, neighbours: int = 1,
          filters: Filters | None = None, start: float | None = None, end: float | None = None) -> Fetched:
    """``item_id`` is a document id (``d…``) or a chunk id (``d…:N``) as search returns them.

    ``start``/``end`` (seconds into a recording) narrow a meeting to the chunks that overlap them.
    """
    if snapshot is None or snapshot.store.collection is None:
        raise CorpusError("the corpus is empty; run `corpus ingest` first")
    collection = snapshot.store.collection
    doc_id, _, ordinal = item_id.partition(":")
    clauses = [{"doc_id": doc_id}, *([filters.where()] if filters and filters.where() else [])]
    if start is not None or end is not None:
        if ordinal:
            raise CorpusError("a time range reads a meeting document: pass its doc_id (d…), not a chunk id")
        if start is not None and end is not None and end <= start:
            raise CorpusError("the time range ends before it starts")
        # a chunk overlaps [start, end] when it ends after the start and starts before the end
        clauses += [{"kind": "meetings"}, *([{"end": {"$gte": start}}] if start is not None else []),
                    *([{"start": {"$lte": end}}] if end is not None else [])]
    scope = clauses[0] if len(clauses) == 1 else {"$and": clauses}
    if ordinal:
        if not ordinal.isdigit():
            raise CorpusError(f"{item_id!r} is not an id from search results (expected d…:N or d…)")
        n = int(ordinal)
        wanted = [f"{doc_id}:{i}" for i in range(max(0, n - neighbours), n + neighbours + 1)]
        got = collection.get(ids=wanted, where=scope, include=["documents", "metadatas"])
    else:
        got = collection.get(where=scope, include=["documents", "metadatas"])
    if not got["ids"]:
        if start is not None or end is not None:
            raise CorpusError(f"nothing in {item_id!r} in that time range (is it a meeting? see its chunks' #t= times)")
        raise CorpusError(f"no document or chunk with id {item_id!r}; use an id returned by search")
    rows = sorted(zip(got["documents"], got["metadatas"], strict=True), key=lambda r: r[1]["ordinal"])
    earlier, later = _across(snapshot, doc_id, rows, int(ordinal), neighbours, filters or NO_FILTERS) \
        if ordinal else ([], [])
    text = _text([*earlier, *rows, *later])
    pages = max(1, -(-len(text) // PAGE_CHARS))
    if not 1 <= page <= pages:
        raise CorpusError(f"page {page} does not exist; this item has {pages} page(s)")
    first_text, first_meta = rows[0]
    head = hit_from(f"{doc_id}:{first_meta['ordinal']}", first_text, first_meta, 0.0)
    return Fetched(
        id=item_id, doc_id=doc_id, title=head.title, kind=head.kind, source=head.source, date=head.date,
        citation=head.citation, citation_label=head.citation_label,
        text=text[(page - 1) * PAGE_CHARS:page * PAGE_CHARS], page=page, pages=pages,
        first_chunk=rows[0][1]["ordinal"], last_chunk=rows[-1][1]["ordinal"], date_source=head.date_source,
    )


def _across(snapshot: Snapshot, doc_id: str, rows: list[tuple[str, dict]], n: int, neighbours: int,
            filters: Filters) -> tuple[list[tuple[str, dict]], list[tuple[str, dict]]]:
    """The chunks of neighbouring documents in the conversation that make up ``neighbours`` on each side of
    chunk ``n`` where its own document ends first; none for a chunk outside a conversation."""
    first, last = rows[0][1]["ordinal"], rows[-1][1]["ordinal"]
    before, after = neighbours - (n - first), neighbours - (last - n)  # > 0 only where the document ended
    if before <= 0 and after <= 0:
        return [], []
    # only chunks passing the filters (the caller's access groups) are placed: their rows can come from the cache
    earlier, later = timeline.around(snapshot.db, f"{doc_id}:{first}", f"{doc_id}:{last}", before, after, filters)
    found = snapshot.vectors.rows([*earlier, *later]) if earlier or later else {}
    return [found[i] for i in earlier if i in found], [found[i] for i in later if i in found]


def _text(rows: list[tuple[str, dict]]) -> str:
    """The chunks in order; where they come from more than one document, each document's run opens with a
    line naming it and its citation, so what a neighbour said is cited to its own message."""
    runs: list[tuple[dict, list[str]]] = []
    for text, meta in rows:
        if runs and runs[-1][0]["doc_id"] == meta["doc_id"]:
            runs[-1][1].append(text)
        else:
            runs.append((meta, [text]))
    if len(runs) == 1:
        return _join(runs[0][1])
    return "\n\n".join(f"[{meta.get('title', '')} · {meta.get('citation_uri', '')}]\n{_join(texts)}"
                        for meta, texts in runs)


def _join(texts: list[str]) -> str:
    """Chunks in order, without the sentences a split repeated at the start of the next chunk."""
    lines: list[str] = []
    for text in texts:
        new = text.split("\n")
        overlap = next((k for k in range(min(len(lines), len(new)), 0, -1) if lines[-k:] == new[:k]), 0)
        lines.extend(new[overlap:])
    return "\n".join(lines)
