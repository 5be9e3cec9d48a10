"""Does the question log slow a search? In-process search latency with logging on and off, interleaved.

``Searcher.find`` records a search in the question log only when it names an asker (``server.asked``); the
record goes on a queue that one writer thread commits to SQLite, so the search itself only pays for building
the record. This asks the development questions (bench/questions/dev.toml) over a store of the three real
sources, each question once with an asker (log on) and once without (log off), alternating which goes first,
after a warm-up, and prints p50, p95 and mean for both, with the time ``QuestionLog.record`` itself takes.
The writer thread's commits run during the measured searches, so their cost to the search (the GIL, the disk)
is in the "on" figures.

    python bench/gaps_log_latency.py --keep DIR [--rounds 3]

``--keep DIR`` is a folder holding a store built by bench/questions_eval.py (or where one is built). Its
question log gets the bench's searches; the bench erases it at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.mcp_store import ensure_store  # noqa: E402
from bench.questions_eval import QUESTIONS, config_text  # noqa: E402
from server.questions import load_questions  # noqa: E402


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, required=True, help="folder of the store (built there when missing)")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the questions (default 3)")
    args = parser.parse_args()

    import corpus  # noqa: F401
    from connectors import load_config
    from ingest.embedder import one_thread_per_query
    from server.asked import Asker
    from server.search import Searcher

    config_path, how = ensure_store(args.keep, config_text())
    config = load_config(config_path)
    one_thread_per_query()
    searcher = Searcher(config)
    questions = [q.text for q in load_questions(QUESTIONS / "dev.toml")]
    for question in questions[:10]:
        searcher.find(question, limit=5)
    asker = Asker("bench", session="bench")
    timings: dict[str, list[float]] = {"off": [], "on": []}
    for round_ in range(args.rounds):
        for n, question in enumerate(questions):
            order = ("on", "off") if (n + round_) % 2 else ("off", "on")
            for mode in order:
                started = time.perf_counter()
                searcher.find(question, limit=5, asker=asker if mode == "on" else None)
                timings[mode].append((time.perf_counter() - started) * 1000)
    log = searcher.asked.log
    started = time.perf_counter()
    for _ in range(1000):
        log.record("how do I book travel?", "bench", verdict="likely", top_relevance=0.5, session="bench",
                   hits=[f"d{n:016x}:1" for n in range(8)])
    record_us = (time.perf_counter() - started) * 1000
    log.flush()
    logged = len(log.entries())
    log.forget()

    print(f"store: {config.store_path} ({how}); {len(questions)} dev questions x {args.rounds} rounds, limit 5")
    print(f"{'log':<5}{'searches':>10}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}")
    for mode in ("off", "on"):
        values = timings[mode]
        print(f"{mode:<5}{len(values):>10}{percentile(values, 0.5):>10.1f}{percentile(values, 0.95):>10.1f}"
              f"{statistics.mean(values):>10.1f}")
    print(f"QuestionLog.record alone: {record_us:.1f} µs per call (mean of 1000); {logged} entries were written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
