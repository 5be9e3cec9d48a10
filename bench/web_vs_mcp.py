"""Searching from the web page costs no more than the same search over MCP: both measured in one run.

One `corpus serve --http` on loopback (no tokens) serves both surfaces from the same searcher. Each question of
the development set is asked over both, in alternating order, ``--rounds`` times: the web page as a browser
asks it (GET /?q=…, the whole HTML page back, 10 passages), MCP as a Claude session does (tools/call search,
limit 10, over one initialized streamable-HTTP session). The first round is a warm-up and is not counted.
The table gives per-request latency and response size per surface.

    python bench/web_vs_mcp.py [--config DIR/corpus.toml] [--rounds 3] [--limit N]

Without ``--config`` it builds a store of sample/docs in a temp folder first. A config's store folder receives
the question log of these searches, so point it at a copy of a store you care about.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.http_load import _session, cli, start_server, stop_server  # noqa: E402
from server.questions import load_questions  # noqa: E402

LIMIT = 10  # passages: what the web page shows


async def measure(url: str, queries: list[str], rounds: int) -> dict[str, list[tuple[float, int]]]:
    """(seconds, response bytes) per request and surface; round 0 warms both and is dropped."""
    timings: dict[str, list[tuple[float, int]]] = {"web page": [], "MCP": []}
    base = url.removesuffix("/mcp")
    async with httpx.AsyncClient(base_url=base, timeout=120) as web, _session(url) as mcp:

        async def page(query: str) -> tuple[float, int]:
            started = time.perf_counter()
            response = await web.get("/", params={"q": query})
            response.raise_for_status()
            return time.perf_counter() - started, len(response.content)

        async def tool(query: str) -> tuple[float, int]:
            started = time.perf_counter()
            result = await mcp.call_tool("search", {"query": query, "limit": LIMIT}, read_timeout_seconds=120)
            took = time.perf_counter() - started
            if result.is_error:
                raise RuntimeError(result.content[0].text)
            return took, len(result.model_dump_json(by_alias=True, exclude_none=True))

        for round_ in range(rounds + 1):
            for n, query in enumerate(queries):
                order = [("web page", page), ("MCP", tool)]
                for surface, call in order if (n + round_) % 2 == 0 else order[::-1]:
                    measured = await call(query)
                    if round_:
                        timings[surface].append(measured)
    return timings


def table(timings: dict[str, list[tuple[float, int]]]) -> str:
    rows = ["| surface | searches | p50 ms | p95 ms | mean ms | response kB |", "|---|---:|---:|---:|---:|---:|"]
    for surface, measured in timings.items():
        ms = sorted(1000 * seconds for seconds, _ in measured)
        p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
        size = statistics.mean(b for _, b in measured) / 1024
        rows.append(f"| {surface} | {len(ms)} | {statistics.median(ms):.1f} | {p95:.1f} | {statistics.mean(ms):.1f} "
                    f"| {size:.1f} |")
    return "\n".join(rows)


def sample_store(folder: Path) -> Path:
    config = folder / "corpus.toml"
    config.write_text(f'[corpus]\npath = "store"\n\n[[sources]]\nname = "handbook"\nkind = "docs"\n'
                      f'path = "{REPO / "sample" / "docs"}"\n')
    subprocess.run(cli(config, "ingest"), check=True, stdout=subprocess.DEVNULL)
    return config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="a corpus.toml whose store is built (default: sample/docs)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds over the questions (default 3)")
    parser.add_argument("--limit", type=int, help="only the first N questions")
    args = parser.parse_args()
    queries = [q.text for q in load_questions(REPO / "bench" / "questions" / "dev.toml")][:args.limit]
    with tempfile.TemporaryDirectory(prefix="corpus-web-bench-") as temp:
        config = args.config.resolve() if args.config else sample_store(Path(temp))
        proc, url = start_server(config, Path(temp) / "serve.log")
        try:
            timings = asyncio.run(measure(url, queries, args.rounds))
        finally:
            stop_server(proc)
    print(f"{len(queries)} questions x {args.rounds} rounds, one server, both surfaces alternating, limit {LIMIT}")
    print(table(timings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
