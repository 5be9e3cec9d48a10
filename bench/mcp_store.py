"""A store built with the normal CLI and searched through the real MCP client: what the quality benches share.

Quality is judged the way Claude sees it, so each bench writes a corpus.toml, runs `corpus ingest` on it (unless
the folder already holds a published store, ``--keep``) and asks its questions through `corpus serve` over stdio
with the `mcp` SDK's client. The server runs ``--standalone``: the same search in one process the bench owns, so
no shared engine outlives the run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from bench.sessions import corpus_command, published

Search = Callable[[str, int], Awaitable[dict]]


# the development store takes about 8 million tokens (input, cached and output), over the 2 million a run may spend
ENRICHED = "\n[claude]\ncontextualize = true\nlikely_questions = true\ntoken_budget = 20_000_000\n"
KEY = "ANTHROPIC_API_KEY"
CLAUDE_LINE = re.compile(r"contextual chunks: Claude .*?≈ \$[\d.]+")  # the ingest summary's, wrapped or not


def enrichment(wanted: bool) -> str:
    """The ``[claude]`` section a bench's ``--enrich`` adds: Claude situates each chunk and writes the questions it
    answers, so what that buys is measured on the same questions. Without a key the ingest would fall back to plain
    chunks and measure nothing new: that stops the bench instead."""
    if not wanted:
        return ""
    if not os.environ.get(KEY, "").strip():
        raise SystemExit(f"--enrich needs ${KEY}: without it the ingest writes plain chunks")
    return ENRICHED


def ensure_store(folder: Path, config_text: str) -> tuple[Path, str]:
    """``folder/corpus.toml`` written and its store ingested, or reused when already published; how it went.
    A store built from another corpus.toml (with or without ``--enrich``) is not reused: it would measure that."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "corpus.toml"
    if published(folder / "store"):
        if config.exists() and config.read_text() != config_text:
            raise SystemExit(f"{folder} holds a store built from another corpus.toml; keep this run in a new folder")
        return config, "reused"
    config.write_text(config_text)
    print(f"ingesting into {folder / 'store'} (this takes a while)", file=sys.stderr, flush=True)
    started = time.perf_counter()
    with (folder / "ingest.log").open("w") as log:
        subprocess.run([*corpus_command(), "--config", str(config), "ingest"], check=True, cwd=folder,
                       stdout=log, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - started
    claude = CLAUDE_LINE.search(" ".join((folder / "ingest.log").read_text().split()))
    return config, f"built in {seconds:.0f} s" + (f"; {claude.group()}" if claude else "")


@asynccontextmanager
async def mcp_search(config: Path) -> AsyncIterator[Search]:
    """A stdio `corpus serve --standalone` session; yields ``search(query, limit)`` -> the tool's structured content."""
    from mcp import ClientSession, StdioServerParameters, stdio_client

    command = corpus_command()
    params = StdioServerParameters(command=command[0],
                                   args=[*command[1:], "--config", str(config), "serve", "--standalone"],
                                   cwd=str(config.parent))
    with (config.parent / "serve.log").open("w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()

            async def search(query: str, limit: int) -> dict:
                result = await session.call_tool("search", {"query": query, "limit": limit})
                if result.is_error:
                    raise RuntimeError(f"search {query!r} failed: {result.content[0].text[:300]}")
                return {**result.structured_content, "text": result.content[0].text}

            yield search


def hit_text(hit: dict) -> str:
    """All the text a hit of the MCP result carries: its passage and the further passages of its document."""
    return "\n".join([hit["text"], *(passage["text"] for passage in hit.get("more", []))])
