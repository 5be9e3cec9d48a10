"""What a publish costs the searches in flight: several threads search a kept store while new generations appear.

A server swaps to each new generation within a second of its publish; opening it means a private copy of its
Chroma folder and, for a store up to ``store.vectors.IN_MEMORY_BYTES``, loading the matrix of its vectors: seconds
at 100k chunks. This runs ``--threads`` searchers in one process (as a server's sessions do) over a store that
``bench/search_latency.py --keep DIR`` left, and every ``--every`` seconds publishes a new generation of it with
the vectors copied, as an ingest that changed a document does. The table splits the searches into those that
began within ``--window`` seconds after a publish ended (when servers notice it) and the others, with p50 / p95
/ max and how many took over a second, then gives each publish's slowest search.

    python bench/publish_stall.py DIR [--threads 4] [--publishes 3] [--every 8] [--window 6]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.search_latency import query_set  # noqa: E402
from connectors import load_config  # noqa: E402
from server.search import Searcher  # noqa: E402
from store.lock import WriterLock  # noqa: E402
from store.publish import mark_unpublished, publish  # noqa: E402


def republish(store_path: Path) -> float:
    """A new generation of the store as it is, vectors copied; the seconds the publish took."""
    started = time.perf_counter()
    with WriterLock(store_path):
        mark_unpublished(store_path, vectors=True)
        publish(store_path, with_vectors=True)
    return time.perf_counter() - started


def row(name: str, times: list[float]) -> str:
    if not times:
        return f"{name:34} {'-':>7}"
    ms = np.array(times) * 1000
    return (f"{name:34} {len(ms):7} {np.percentile(ms, 50):8.1f} {np.percentile(ms, 95):8.1f} {ms.max():9.1f} "
            f"{int((ms > 1000).sum()):6}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a store kept by bench/search_latency.py --keep")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--publishes", type=int, default=3)
    parser.add_argument("--every", type=float, default=8.0, help="seconds between publishes")
    parser.add_argument("--window", type=float, default=6.0, help="seconds after a publish counted as its own")
    args = parser.parse_args()
    config = load_config(args.folder / "corpus.toml")
    searcher = Searcher(config)
    queries = query_set()
    for query in queries[:10]:  # warm: model, snapshot, matrix
        searcher.search(query.text, filters=query.filters())
    done = threading.Event()
    timings: list[tuple[float, float]] = []  # (start, seconds)
    lock = threading.Lock()

    def search(offset: int) -> None:
        n = offset
        while not done.is_set():
            query = queries[n % len(queries)]
            started = time.perf_counter()
            searcher.search(query.text, filters=query.filters())
            with lock:
                timings.append((started, time.perf_counter() - started))
            n += 1

    threads = [threading.Thread(target=search, args=(i * 7,)) for i in range(args.threads)]
    for thread in threads:
        thread.start()
    publishes: list[tuple[float, float]] = []  # (when it ended, seconds it took)
    try:
        for _ in range(args.publishes):
            time.sleep(args.every)
            took = republish(config.store_path)
            publishes.append((time.perf_counter(), took))  # the generation appears as the publish ends
        time.sleep(args.every)
    finally:
        done.set()
        for thread in threads:
            thread.join()
        searcher.replica.close()

    def after(start: float) -> int | None:
        return next((k for k, (when, _) in enumerate(publishes) if 0 <= start - when < args.window), None)

    near = [seconds for start, seconds in timings if after(start) is not None]
    calm = [seconds for start, seconds in timings if after(start) is None]
    print(f"\n{args.threads} threads searching {args.folder} while {args.publishes} generations are published, "
          f"one every {args.every:g} s\n")
    print(f"{'searches':34} {'n':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>9} {'> 1 s':>6}")
    print(row(f"begun within {args.window:g} s after a publish", near))
    print(row("the others", calm))
    for k, (_, took) in enumerate(publishes):
        worst = max((seconds for start, seconds in timings if after(start) == k), default=0.0)
        print(f"publish {k + 1}: took {took:.1f} s; slowest search begun within the window {worst * 1000:,.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
