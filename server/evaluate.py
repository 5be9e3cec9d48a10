"""`corpus eval`: retrieval quality of the real write and read paths on a BEIR-format benchmark.

The BEIR corpus is ingested the normal way (the ``beir`` connector, the chunker, the embedder, Chroma
and the keyword index) into a throwaway store, then every test query runs through ``Searcher.search``
in each mode. Scoring is per document: a document ranks where its best chunk ranks.

For each query and mode there are two calls. The first asks for ``MAX_LIMIT`` hits, as the MCP tool
may, and gives nDCG@10, recall@10, MRR@10 and the latency. The second lifts the cap to ``DEEP`` hits
for recall@100 only: a deeper call takes deeper candidate lists, which slightly changes how hybrid
fuses its top ten, so the top-ten figures come from the call a user would make.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from connectors import load_config
from connectors.beir import CORPUS_FILES, read_lines
from corpus.config import Config
from corpus.errors import CorpusError
from corpus.records import document_id

MODES = ("hybrid", "dense", "keyword")
SOURCE = "beir"
DEEP = 200  # chunks asked for in the recall@100 call; several chunks may share one document


@dataclass(frozen=True)
class ModeResult:
    mode: str
    ndcg_at_10: float
    recall_at_10: float
    recall_at_100: float
    mrr_at_10: float
    p50_ms: float
    p95_ms: float
    short_at_100: int = 0  # queries whose recall@100 call gave fewer than min(100, corpus size) documents


@dataclass
class EvalResult:
    dataset: str
    documents: int
    chunks: int
    queries: int
    ingest_seconds: float
    ingest: dict[str, int]  # added, updated, deleted, unchanged, failed
    store: str | None  # the kept store's folder; None when it was thrown away
    half: int | None = None  # 1 or 2: only the odd or the even test queries were asked
    modes: list[ModeResult] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


# --- metrics (standard definitions; ``ranked`` is a list of document ids, best first) ---

def dcg(gains: Iterable[int], k: int) -> float:
    return sum((2 ** g - 1) / math.log2(rank + 1) for rank, g in enumerate(list(gains)[:k], start=1))


def ndcg_at_k(ranked: Sequence[str], qrels: dict[str, int], k: int) -> float:
    """Graded gains 2^rel - 1 discounted by log2(rank + 1), over the ideal ordering of the qrels."""
    ideal = dcg(sorted((r for r in qrels.values() if r > 0), reverse=True), k)
    if ideal == 0:
        return 0.0
    return dcg((max(qrels.get(d, 0), 0) for d in ranked), k) / ideal


def recall_at_k(ranked: Sequence[str], qrels: dict[str, int], k: int) -> float:
    relevant = {d for d, r in qrels.items() if r > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def mrr_at_k(ranked: Sequence[str], qrels: dict[str, int], k: int) -> float:
    for rank, d in enumerate(ranked[:k], start=1):
        if qrels.get(d, 0) > 0:
            return 1.0 / rank
    return 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def unique_docs(doc_ids: Iterable[str]) -> list[str]:
    """Documents in order of their best chunk: the first occurrence of each."""
    return list(dict.fromkeys(doc_ids))


# --- the BEIR folder ---

def load_queries(folder: Path) -> dict[str, str]:
    queries = {}
    for raw in read_lines(folder / "queries.jsonl"):
        record = json.loads(raw)
        queries[str(record["_id"])] = str(record["text"])
    return queries


def load_qrels(folder: Path, split: str = "test") -> dict[str, dict[str, int]]:
    """query id -> {corpus id: relevance}, in file order; the first row is a header."""
    path = folder / "qrels" / f"{split}.tsv"
    qrels: dict[str, dict[str, int]] = {}
    with path.open(newline="", encoding="utf-8") as f:
        rows = csv.reader(f, delimiter="\t")
        next(rows, None)
        for row in rows:
            if len(row) < 3:
                continue
            qrels.setdefault(row[0], {})[row[1]] = int(float(row[2]))
    return qrels


def _check_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise CorpusError(f"{folder}: no such folder")
    missing = [name for name in ("queries.jsonl", "qrels/test.tsv") if not (folder / name).is_file()]
    if not any((folder / name).is_file() for name in CORPUS_FILES):
        missing.insert(0, " or ".join(CORPUS_FILES))
    if missing:
        raise CorpusError(f"{folder}: not a BEIR folder (missing {', '.join(missing)})")


def _doc_ids(folder: Path) -> dict[str, str]:
    """Store document id -> BEIR _id, for every corpus record."""
    path = next(folder / name for name in CORPUS_FILES if (folder / name).is_file())
    ids = {}
    for raw in read_lines(path):
        native_id = str(json.loads(raw)["_id"])
        ids[document_id(SOURCE, native_id)] = native_id
    return ids


def _write_config(root: Path, folder: Path) -> Config:
    path = root / "corpus.toml"
    # json.dumps gives a valid TOML basic string (same escapes) for any path.
    path.write_text(
        f'[corpus]\npath = "store"\n\n'
        f'[[sources]]\nname = "{SOURCE}"\nkind = "beir"\npath = {json.dumps(str(folder))}\n',
        encoding="utf-8",
    )
    return load_config(path)


# --- the run ---

def evaluate(folder: Path, *, limit_queries: int | None = None, half: int | None = None,
             keep_store: Path | None = None, embedder=None, progress=None) -> EvalResult:
    """Ingest the BEIR corpus at ``folder`` into a throwaway store (or ``keep_store``) and score each mode.

    ``half`` 1 or 2 keeps the odd or the even test queries (in qrels order): tune on one, report both.
    """
    from ingest.embedder import Embedder
    from ingest.pipeline import ingest
    from ingest.status import status
    from server.search import Searcher

    folder = Path(folder).resolve()
    _check_folder(folder)
    queries = load_queries(folder)
    qrels = {q: rels for q, rels in load_qrels(folder).items() if q in queries and any(r > 0 for r in rels.values())}
    selected = list(qrels)[half - 1::2] if half else list(qrels)
    selected = selected[:limit_queries] if limit_queries else selected
    if not selected:
        raise CorpusError(f"{folder}: no test query has both a text in queries.jsonl and a relevant document")

    with contextlib.ExitStack() as stack:
        if keep_store is not None:
            root = Path(keep_store).resolve()
            root.mkdir(parents=True, exist_ok=True)
        else:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="corpus-eval-")))
        config = _write_config(root, folder)
        embedder = embedder or Embedder(config.embedding.model, config.embedding.device, config.embedding.batch_size)
        run = ingest(config, embedder=embedder, progress=progress)
        stats = run.sources[SOURCE]
        source = next(s for s in status(config).sources if s.name == SOURCE)
        result = EvalResult(
            dataset=folder.name, documents=source.documents, chunks=source.chunks, queries=len(selected),
            ingest_seconds=round(run.seconds, 2),
            ingest={k: getattr(stats, k) for k in ("added", "updated", "deleted", "unchanged", "failed")},
            store=str(root) if keep_store is not None else None, half=half,
        )
        doc_ids = _doc_ids(folder)
        searcher = Searcher(config, embedder)
        stack.callback(searcher.replica.close)  # before the temp folder goes: it holds the reader's copy
        result.modes = _score_modes(searcher, [(queries[q], qrels[q]) for q in selected], doc_ids)
    return result


def _score_modes(searcher, cases: list[tuple[str, dict[str, int]]], doc_ids: dict[str, str]) -> list[ModeResult]:
    """Every mode on every query; the modes take turns query by query, so a load that comes and goes
    (another process on the machine) weighs on each mode's latency alike."""
    from server.search import MAX_LIMIT

    def ranked(hits) -> list[str]:
        return unique_docs(doc_ids.get(h.doc_id, h.doc_id) for h in hits)

    for mode in MODES:
        searcher.search(cases[0][0], limit=MAX_LIMIT, mode=mode)  # warm-up: model, snapshot, caches
    scores = {mode: {"ndcg": [], "r10": [], "r100": [], "mrr": [], "ms": [], "short": []} for mode in MODES}
    for query, rels in cases:
        for mode in MODES:
            started = time.perf_counter()
            hits = searcher.search(query, limit=MAX_LIMIT, mode=mode)
            elapsed = (time.perf_counter() - started) * 1000
            top = ranked(hits)
            deep = ranked(searcher.search(query, limit=DEEP, mode=mode, cap=DEEP))
            s = scores[mode]
            s["ms"].append(elapsed)
            s["ndcg"].append(ndcg_at_k(top, rels, 10))
            s["r10"].append(recall_at_k(top, rels, 10))
            s["mrr"].append(mrr_at_k(top, rels, 10))
            s["r100"].append(recall_at_k(deep, rels, 100))
            s["short"].append(len(deep) < min(100, len(doc_ids)))

    def mean(values: list[float]) -> float:
        return round(sum(values) / len(values), 4)

    return [
        ModeResult(
            mode=mode, ndcg_at_10=mean(s["ndcg"]), recall_at_10=mean(s["r10"]), recall_at_100=mean(s["r100"]),
            mrr_at_10=mean(s["mrr"]), p50_ms=round(percentile(s["ms"], 50), 1),
            p95_ms=round(percentile(s["ms"], 95), 1), short_at_100=sum(s["short"]),
        )
        for mode, s in scores.items()
    ]


def format_table(result: EvalResult) -> str:
    ingest = ", ".join(f"{v} {k}" for k, v in result.ingest.items() if v)
    lines = [
        f"{result.dataset}: {result.documents} documents in {result.chunks} chunks, {result.queries} test queries"
        + (f" (half {result.half}: the {('odd', 'even')[result.half - 1]} ones)" if result.half else ""),
        f"ingest: {result.ingest_seconds:.1f} s ({ingest or 'nothing to do'})"
        + (f"; store kept in {result.store}" if result.store else ""),
        "",
    ]
    header = ("mode", "nDCG@10", "recall@10", "recall@100", "MRR@10", "p50 ms", "p95 ms")
    rows = [
        (m.mode, f"{m.ndcg_at_10:.3f}", f"{m.recall_at_10:.3f}", f"{m.recall_at_100:.3f}", f"{m.mrr_at_10:.3f}",
         f"{m.p50_ms:.1f}", f"{m.p95_ms:.1f}")
        for m in result.modes
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells))
    for m in result.modes:
        if m.short_at_100:
            lines.append(f"note: {m.mode}: the recall@100 call returned fewer than {min(100, result.documents)} "
                         f"documents for {m.short_at_100} of the queries")
    return "\n".join(lines)
