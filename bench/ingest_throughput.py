"""Ingest throughput benchmark: how close the pipeline gets to the embedding model's own speed.

Embedding dominates ingest cost, so the pipeline's chunks/s is compared with the model encoding the very same
chunk texts in one call (target: pipeline/model >= 0.85). It also measures an unchanged re-ingest (should cost
< 2% of the first, since nothing is re-embedded) and the peak RSS of a full run against a run over about half
the documents (memory should not grow with the corpus). Each ingest runs the real CLI in a fresh subprocess.

    python bench/ingest_throughput.py [--docs PATH] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DOCS = REPO.parent / "shared" / "data" / "docs" / "18f-handbook"
# Runs argv[1:] and prints the peak RSS (KiB) of it and its descendants as the last stderr line.
WRAPPER = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r.returncode)")


class ChildFailed(Exception):
    pass


def run(args: list[str], measure: bool = False) -> tuple[str, float, int]:
    """Run ``args`` from the repo root; return stdout, wall seconds and (if ``measure``) peak RSS in KiB."""
    cmd = [sys.executable, "-c", WRAPPER, *args] if measure else args
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.splitlines()[-30:])
        raise ChildFailed(f"command failed ({proc.returncode}): {' '.join(args)}\n{tail}")
    rss = int(proc.stderr.strip().splitlines()[-1]) if measure else 0
    return proc.stdout, wall, rss


def cli(config: Path, *command: str, measure: bool = False) -> tuple[str, float, int]:
    return run([sys.executable, "-m", "cli.main", "--config", str(config), *command], measure=measure)


def write_config(folder: Path, docs: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "corpus.toml"
    source = f'name = "bench"\nkind = "docs"\npath = {json.dumps(str(docs))}'  # a JSON string is a TOML string
    config.write_text(f'[corpus]\npath = "store"\n\n[[sources]]\n{source}\n')
    return config


def status(config: Path) -> tuple[int, int, float]:
    """Documents, chunks and the last run's pipeline seconds (model loading excluded)."""
    st = json.loads(cli(config, "status", "--json")[0])
    source = next(s for s in st["sources"] if s["name"] == "bench")
    return source["documents"], source["chunks"], float(st["last_run"]["summary"]["seconds"])


def copy_half(docs: Path, target: Path) -> None:
    """Every other file (sorted), relative paths kept: a half-size corpus with the same mix of documents."""
    files = sorted(p for p in docs.rglob("*") if p.is_file())
    for path in files[::2]:
        dest = target / path.relative_to(docs)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)


def stored_texts(store: Path) -> list[str]:
    """Every stored chunk's embedded text, rebuilt as Chunk.embed_text does."""
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(path=str(store / "chroma"), settings=Settings(anonymized_telemetry=False))
    collection = client.get_collection("corpus")
    texts: list[str] = []
    total, page = collection.count(), 1000
    for offset in range(0, total, page):
        got = collection.get(include=["documents", "metadatas"], limit=page, offset=offset)
        for text, meta in zip(got["documents"], got["metadatas"], strict=True):
            header = (meta or {}).get("header") or ""
            texts.append(f"{header}\n{text}" if header else text)
    return texts


def model_rate(texts: list[str]) -> tuple[float, int]:
    """Chunks/s of the model alone over ``texts`` (one embed call after a warm-up), and torch's thread count."""
    sys.path.insert(0, str(REPO))  # the script's own folder, bench/, is what Python put on the path
    import corpus  # noqa: F401  (offline environment before the model loads)
    from ingest.embedder import Embedder

    embedder = Embedder("all-MiniLM-L6-v2")
    embedder.embed(texts[:32])
    started = time.perf_counter()
    embedder.embed(texts)
    rate = len(texts) / (time.perf_counter() - started)
    import torch

    return rate, torch.get_num_threads()


def bench(docs: Path, tmp: Path) -> list[tuple[str, str]]:
    full = write_config(tmp / "full", docs)
    _, wall1, rss_full = cli(full, "ingest", measure=True)
    documents, chunks, pipe1 = status(full)
    _, wall2, _ = cli(full, "ingest", measure=True)
    _, _, pipe2 = status(full)

    copy_half(docs, tmp / "half-docs")
    half = write_config(tmp / "half", tmp / "half-docs")
    _, _, rss_half = cli(half, "ingest", measure=True)
    half_docs, _, _ = status(half)

    model, threads = model_rate(stored_texts(tmp / "full" / "store"))
    pipeline = chunks / pipe1
    print(f"machine: nproc {os.cpu_count()}, torch threads {threads}")
    return [
        ("documents", f"{documents}"),
        ("chunks", f"{chunks}"),
        ("first ingest wall s (incl. startup, model load)", f"{wall1:.1f}"),
        ("first ingest pipeline s", f"{pipe1:.1f}"),
        ("pipeline chunks/s", f"{pipeline:.1f}"),
        ("model encode chunks/s", f"{model:.1f}"),
        ("pipeline/model ratio (target >= 0.85)", f"{pipeline / model:.2f}"),
        ("re-ingest wall s", f"{wall2:.1f}"),
        ("re-ingest pipeline s", f"{pipe2:.2f}"),
        ("re-ingest % of first, pipeline (target < 2%)", f"{100 * pipe2 / pipe1:.2f}%"),
        ("re-ingest % of first, wall", f"{100 * wall2 / wall1:.1f}%"),
        (f"peak RSS full run MB ({documents} docs)", f"{rss_full / 1024:.0f}"),
        (f"peak RSS half run MB ({half_docs} docs)", f"{rss_half / 1024:.0f}"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS, help=f"folder to ingest (default: {DEFAULT_DOCS})")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (stores, configs) afterwards")
    args = parser.parse_args()
    docs = args.docs.resolve()
    if not docs.is_dir():
        print(f"no such folder: {docs}", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="corpus-bench-"))
    print(f"docs: {docs}\ntemp: {tmp}", flush=True)
    try:
        rows = bench(docs, tmp)
    except ChildFailed as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    width = max(len(name) for name, _ in rows)
    print(f"\n{'metric':<{width}}  {'value':>10}\n{'-' * width}  {'-' * 10}")
    for name, value in rows:
        print(f"{name:<{width}}  {value:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
