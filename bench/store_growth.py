"""Store growth benchmark: does the store stay the size of its content across ingests and a dream pass?

Copies the real sources (the 18F handbook, the houstondatavis Slack export, the PowerShell community call
transcripts) into a temp folder and ingests them, then ten times appends a line to one handbook page and
ingests again, then runs one offline `corpus dream` pass. After each step it prints the size of the live
store (chroma/ and manifest.sqlite), of the published generations and of the whole store folder, a file
stored under several hard links counted once (as du does), with the ratio to the size after the first
ingest (target: <= 1.3 after the ten changes), and what the step's publish wrote: the bytes of the new
generation's files that are not links to older ones. Ingests run the pipeline in this process, one model.

    python bench/store_growth.py [--changes N] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SOURCES = [("handbook", "docs", SHARED / "docs" / "18f-handbook"),
           ("slack", "slack", SHARED / "slack" / "houstondatavis"),
           ("meetings", "meetings", SHARED / "transcripts" / "powershell-community-call")]
CONFIG = """[corpus]
path = "store"
"""
SOURCE = """
[[sources]]
name = "{name}"
kind = "{kind}"
path = "{name}"
"""


def files(path: Path) -> dict[tuple[int, int], int]:
    """Size by inode of every file under ``path`` (or of ``path`` itself): a file under several hard links once."""
    found = [path] if path.is_file() else [Path(root, name) for root, _, names in os.walk(path) for name in names]
    return {(st.st_dev, st.st_ino): st.st_size for st in map(os.lstat, found)}


def measure(store: Path, before: set[tuple[int, int]]) -> tuple[int, int, int, int, int]:
    """Bytes of the live store, of the published generations, of the whole store folder, written by the
    last publish (files of the current generation that were not there before), and how many generations."""
    live: dict = {}
    for path in [store / "chroma", *store.glob("manifest.sqlite*")]:
        live |= files(path)
    published = files(store / "published")
    current = (store / "published" / (store / "published" / "CURRENT").read_text().strip())
    written = sum(size for inode, size in files(current).items() if inode not in before)
    generations = sum(1 for p in (store / "published").iterdir() if p.name.split("-")[0].isdigit())
    return sum(live.values()), sum(published.values()), sum(files(store).values()), written, generations


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=10, help="ingests after the first, one changed file each")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder afterwards")
    args = parser.parse_args()
    missing = [str(path) for _, _, path in SOURCES if not path.is_dir()]
    if missing:
        print(f"shared data not found: {', '.join(missing)}", file=sys.stderr)
        return 1

    sys.path.insert(0, str(REPO))  # the script's own folder, bench/, is what Python put on the path
    import corpus  # noqa: F401  (offline environment before the model loads)
    from connectors import load_config
    from ingest.dream import dream
    from ingest.embedder import Embedder
    from ingest.pipeline import ingest

    tmp = Path(tempfile.mkdtemp(prefix="corpus-growth-"))
    print(f"temp: {tmp}", flush=True)
    try:
        for name, _, path in SOURCES:
            shutil.copytree(path, tmp / name)
        (tmp / "corpus.toml").write_text(CONFIG + "".join(SOURCE.format(name=n, kind=k) for n, k, _ in SOURCES))
        config = load_config(tmp / "corpus.toml")
        embedder = Embedder(config.embedding.model)
        pages = sorted((tmp / "handbook").rglob("*.md"))
        rows = []

        def step(label: str, run) -> None:
            before = set(files(config.store_path)) if config.store_path.exists() else set()
            started = time.perf_counter()
            run()
            rows.append((label, time.perf_counter() - started, *measure(config.store_path, before)))
            print(f"{label}: done", flush=True)

        step("ingest 1: everything", lambda: ingest(config, embedder=embedder))
        for n in range(args.changes):
            page = pages[n * len(pages) // args.changes]
            with page.open("a") as f:
                f.write(f"\n\nRevised: change {n + 1} of the store growth benchmark.\n")
            step(f"ingest {n + 2}: {page.name}", lambda: ingest(config, embedder=embedder))
        step("dream --offline", lambda: dream(config, offline=True))
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    first = rows[0][4]
    width = max(len(r[0]) for r in rows)
    print(f"\n{'step':<{width}}  {'s':>6}  {'live MB':>8}  {'published MB':>12}  {'gens':>4}  {'total MB':>8}  "
          f"{'x first':>7}  {'written MB':>10}")
    for label, seconds, live, published, total, written, generations in rows:
        print(f"{label:<{width}}  {seconds:6.1f}  {live / 1e6:8.2f}  {published / 1e6:12.2f}  {generations:4d}  "
              f"{total / 1e6:8.2f}  {total / first:7.2f}  {written / 1e6:10.2f}")
    print("\nwritten: bytes of the current generation's files that the step created (not links to older files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
