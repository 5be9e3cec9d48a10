"""`corpus dream`: a consolidation pass over what the corpus holds.

For every chunk ingested since the last pass, its nearest neighbours in other documents are
candidate pairs; each pair is judged (ingest/judge.py): duplicate, conflicting, one superseding
the other, or unrelated. Findings become annotations (ingest/annotations.py) that search shows and
uses to down-rank superseded chunks, and a report a person reads, which lists every finding still
active, not only this pass's. A finding the offline rule made and no longer makes (the rule changed) is
withdrawn. Sources and stored chunks are never edited or deleted; `--undo` removes every annotation.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from corpus.claude import Claude
from corpus.config import Config
from corpus.errors import CorpusError
from corpus.times import iso
from ingest.embedder import Embedder
from ingest.judge import Passage, Verdict, judge_offline, judge_with_claude
from store import annotations
from store.annotations import Annotation
from store.chroma import ChunkStore
from store.writer import Writer, writing

NEIGHBOURS = 5  # nearest chunks of other documents looked at per chunk
CANDIDATE_SIMILARITY = 0.75  # cosine similarity below which two chunks are not about the same thing
PAGE = 500


@dataclass(frozen=True)
class Finding:
    relation: str  # duplicate | conflict | superseded
    a: Passage  # for superseded: the older passage
    b: Passage  # for superseded: the newer one
    detail: str
    judged_by: str
    similarity: float


@dataclass
class DreamResult:
    mode: str
    examined_chunks: int = 0
    candidate_pairs: int = 0
    findings: list[Finding] = field(default_factory=list)  # new in this pass
    active: list[Finding] = field(default_factory=list)  # every finding search shows now, this pass's included
    withdrawn: int = 0  # earlier offline findings the rule no longer makes, removed
    seconds: float = 0.0
    since: float | None = None  # only chunks ingested after this were examined; None: all

    def count(self, relation: str) -> int:
        return sum(1 for f in self.findings if f.relation == relation)

    def earlier(self) -> int:
        """Active findings that earlier passes made."""
        return len(self.active) - len(self.findings)


def dream(config: Config, *, full: bool = False, offline: bool = False) -> DreamResult:
    """Examine what changed since the last pass (everything with ``full``), record findings, publish."""
    started = time.time()
    claude = Claude(config.claude, offline="--offline" if offline else None)
    with _annotating(config) as writer:
        store, manifest = writer.store, writer.manifest
        if store.collection is None:
            raise CorpusError("nothing is ingested yet; run `corpus ingest` first")
        since = None if full else annotations.last_run_started(manifest.db)
        result = DreamResult(mode=claude.mode, since=since)
        changed = [row[0] for row in manifest.db.execute(
            "SELECT doc_id FROM documents WHERE pending IS NULL AND ingested_at > ?", (since or 0,))]
        pairs = _candidates(store, changed, result)
        judged = claude.map(lambda pair: _judge(claude, *pair), pairs)
        result.findings = [f for f in judged if f is not None]
        result.mode = claude.mode  # now with any fallbacks that happened
        with manifest.db:
            if full:
                manifest.db.execute("DELETE FROM annotations")
            earlier = _recorded(manifest.db, store)
            kept = [f for f in earlier if not _withdrawn(manifest.db, f)]
            result.withdrawn = len(earlier) - len(kept)
            annotations.add(manifest.db, [a for f in result.findings for a in _annotations(f)])
            new = {_pair(f) for f in result.findings}
            result.active = [f for f in kept if _pair(f) not in new] + result.findings
            result.seconds = time.time() - started
            manifest.db.execute("INSERT INTO dream_runs (started, finished, stats) VALUES (?, ?, ?)",
                                (started, time.time(), json.dumps(summary_counts(result))))
        return result


def undo(config: Config) -> int:
    """Remove every annotation dreaming made; returns how many."""
    with _annotating(config) as writer, writer.manifest.db:
        return annotations.clear(writer.manifest.db)


@contextmanager
def _annotating(config: Config) -> Iterator[Writer]:
    """The store open for writing annotations; they are published when the block ends without error."""
    with writing(config, Embedder(config.embedding.model), create=False) as writer:
        writer.changing(vectors=False)
        yield writer


def summary_counts(result: DreamResult) -> dict:
    return {"examined_chunks": result.examined_chunks, "candidate_pairs": result.candidate_pairs,
            "duplicates": result.count("duplicate"), "conflicts": result.count("conflict"),
            "superseded": result.count("superseded"), "still_active": result.earlier(),
            "withdrawn": result.withdrawn, "mode": result.mode}


def as_json(result: DreamResult) -> dict:
    """The `corpus dream --json` shape (docs/json.md): the counts, then this pass's findings; times in ISO 8601."""
    def passage(p: Passage) -> dict:
        return {**asdict(p), "updated": iso(p.updated)}

    return {**summary_counts(result), "seconds": round(result.seconds, 3), "since": iso(result.since),
            "findings": [{**asdict(f), "a": passage(f.a), "b": passage(f.b)} for f in result.findings]}


def _candidates(store: ChunkStore, doc_ids: list[str], result: DreamResult) -> list[tuple]:
    """Pairs (passage, passage, similarity) of chunks in different documents that are about the same thing."""
    collection = store.collection
    seen: set[tuple[str, str]] = set()
    pairs = []
    for start in range(0, len(doc_ids), PAGE):
        got = collection.get(where={"doc_id": {"$in": doc_ids[start:start + PAGE]}},
                             include=["embeddings", "documents", "metadatas"])
        if not got["ids"]:
            continue
        result.examined_chunks += len(got["ids"])
        near = collection.query(query_embeddings=got["embeddings"], n_results=min(NEIGHBOURS * 2, collection.count()),
                                include=["documents", "metadatas", "distances"])
        for i, chunk_id in enumerate(got["ids"]):
            own = _passage(chunk_id, got["documents"][i], got["metadatas"][i])
            others = zip(near["ids"][i], near["documents"][i], near["metadatas"][i], near["distances"][i], strict=True)
            kept = 0
            for other_id, text, meta, distance in others:
                if meta["doc_id"] == own.doc_id or kept >= NEIGHBOURS:
                    continue
                kept += 1
                similarity = 1.0 - float(distance)
                key = tuple(sorted((chunk_id, other_id)))
                if similarity < CANDIDATE_SIMILARITY or key in seen:
                    continue
                seen.add(key)
                pairs.append((own, _passage(other_id, text, meta), similarity))
    result.candidate_pairs = len(pairs)
    return pairs


def _passage(chunk_id: str, text: str, meta: dict) -> Passage:
    updated = meta.get("updated")
    return Passage(chunk_id=chunk_id, doc_id=meta["doc_id"], title=meta.get("title", ""), text=text,
                   citation=meta.get("citation_uri", ""), updated=updated,
                   date=datetime.fromtimestamp(updated, tz=UTC).date().isoformat() if updated else None)


def _judge(claude: Claude, a: Passage, b: Passage, similarity: float) -> Finding | None:
    verdict: Verdict = judge_with_claude(claude, a, b, similarity) if claude.available \
        else judge_offline(a, b, similarity)
    if verdict.relation == "none":
        return None
    if verdict.relation == "superseded":
        older = b if verdict.newer is a else a
        return Finding("superseded", older, verdict.newer, verdict.detail, verdict.judged_by, similarity)
    return Finding(verdict.relation, a, b, verdict.detail, verdict.judged_by, similarity)


_RELATIONS = {  # finding -> (relation of a towards b, relation of b towards a)
    "duplicate": ("duplicate_of", "duplicate_of"),
    "conflict": ("conflicts_with", "conflicts_with"),
    "superseded": ("superseded_by", "supersedes"),
}
_FINDINGS = {forward: finding for finding, (forward, _) in _RELATIONS.items()}  # a's side names the finding


def _pair(finding: Finding) -> frozenset[str]:
    return frozenset((finding.a.chunk_id, finding.b.chunk_id))


def _recorded(db: sqlite3.Connection, store: ChunkStore) -> list[Finding]:
    """The findings earlier passes left, rebuilt from their annotations and the stored chunks."""
    rows: dict[frozenset[str], tuple] = {}  # a pair is annotated on both sides; a's side tells the finding
    for chunk_id, other_id, relation, detail, judged_by in db.execute(
            "SELECT chunk_id, other_chunk_id, relation, detail, judged_by FROM annotations ORDER BY rowid"):
        if relation in _FINDINGS:
            rows.setdefault(frozenset((chunk_id, other_id)), (chunk_id, other_id, _FINDINGS[relation], detail,
                                                              judged_by))
    if not rows:
        return []
    got = store.collection.get(ids=sorted({i for pair in rows for i in pair}),
                               include=["embeddings", "documents", "metadatas"])
    chunks = {i: (_passage(i, text, meta), np.asarray(vector, dtype=np.float32))
              for i, text, meta, vector in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"],
                                               strict=True)}
    found = []
    for a_id, b_id, relation, detail, judged_by in rows.values():
        if a_id in chunks and b_id in chunks:
            (a, va), (b, vb) = chunks[a_id], chunks[b_id]
            similarity = float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb)))
            found.append(Finding(relation, a, b, detail, judged_by, similarity))
    return found


def _withdrawn(db: sqlite3.Connection, finding: Finding) -> bool:
    """Remove an offline finding the rule no longer makes; Claude's stand until `--full` judges them again."""
    if finding.judged_by != "offline" or judge_offline(finding.a, finding.b, finding.similarity).relation \
            == finding.relation:
        return False
    a, b = finding.a.chunk_id, finding.b.chunk_id
    db.execute("DELETE FROM annotations WHERE (chunk_id=? AND other_chunk_id=?) OR (chunk_id=? AND other_chunk_id=?)",
               (a, b, b, a))
    return True


def _annotations(finding: Finding) -> list[Annotation]:
    forward, backward = _RELATIONS[finding.relation]
    return [_annotation(finding.a, forward, finding.b, finding), _annotation(finding.b, backward, finding.a, finding)]


def _annotation(own: Passage, relation: str, other: Passage, finding: Finding) -> Annotation:
    return Annotation(chunk_id=own.chunk_id, doc_id=own.doc_id, relation=relation, other_chunk_id=other.chunk_id,
                      other_doc_id=other.doc_id, other_title=other.title, other_citation=other.citation,
                      other_date=other.date, detail=finding.detail, judged_by=finding.judged_by)


def write_report(result: DreamResult, path: Path) -> None:
    """Markdown a person reads: every active finding (what, where, both citations and dates), new ones marked.

    A pass that finds nothing new still lists what earlier passes found and search still shows.
    """
    since = datetime.fromtimestamp(result.since, tz=UTC).strftime("%Y-%m-%d %H:%M UTC") if result.since else None
    withdrawn = f"; {result.withdrawn} earlier finding(s) withdrawn (the offline rule no longer makes them)" \
        if result.withdrawn else ""
    lines = [
        "# corpus dream report", "",
        f"- mode: {result.mode}",
        f"- examined: {result.examined_chunks} chunks " + (f"ingested since {since}" if since else "(everything)"),
        f"- candidate pairs: {result.candidate_pairs}; new in this pass: {result.count('conflict')} "
        f"contradiction(s), {result.count('superseded')} superseded fact(s), {result.count('duplicate')} duplicate(s)",
        f"- active (search shows them): {len(result.active)} finding(s), {result.earlier()} of them from earlier "
        f"passes{withdrawn}",
        "- nothing in the sources or the store was changed; `corpus dream --undo` removes the annotations", "",
    ]
    new = {_pair(f) for f in result.findings}
    sections = (("conflict", "Contradictions", "A", "B"), ("superseded", "Superseded facts", "older", "newer"),
                ("duplicate", "Duplicates", "A", "B"))
    for relation, heading, first, second in sections:
        found = [f for f in result.active if f.relation == relation]
        lines += [f"## {heading} ({len(found)})", ""]
        for n, f in enumerate(found, start=1):
            lines += [f"### {n}. {f.detail or relation}", "",
                      f"- judged by {f.judged_by}, similarity {f.similarity:.2f}, "
                      + ("new in this pass" if _pair(f) in new else "found in an earlier pass")]
            for label, p in ((first, f.a), (second, f.b)):
                snippet = " ".join(p.text.split())[:280]
                lines += [f"- **{label}**: “{p.title}”, {p.date or 'undated'}, <{p.citation}>", f"  > {snippet}"]
            lines.append("")
        if not found:
            lines += ["None found.", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
