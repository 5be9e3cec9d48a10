"""Five Claude Code sessions on one store: memory of each `corpus serve` and time to its first search result.

Claude Code starts one stdio `corpus serve` per session. This opens ``--sessions`` of them one after another
with the real MCP client, keeps them all open, and in each times spawn -> initialize -> first ``search`` result.
With every session open it reads each `corpus serve` process's RSS and PSS (PSS shares the pages two processes
map between them, so PSS adds up to what they cost together), the engine's, and counts the private copies of
the store in the store folder. It runs twice: through the shared engine (the default `corpus serve`), then
with ``--standalone`` (every session its own model and store copy: the before figure).

The store holds the three real sources in ../shared/data (the 18F handbook, the houstondatavis Slack export,
the PowerShell community call transcripts), ingested once with `corpus ingest` (a few minutes on two cores).

    python bench/sessions.py [--sessions 5] [--keep DIR]

``--keep DIR`` builds the store in DIR and leaves it there; a later run reuses it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from server.front import engine_pid  # noqa: E402  (light: no model, no store)

DATA = REPO.parent / "shared" / "data"
SOURCES = {  # name: (kind, folder in ../shared/data, extra options)
    "handbook": ("docs", "docs/18f-handbook", ""),
    "datavis": ("slack", "slack/houstondatavis", 'workspace_url = "https://houstondatavis.slack.com"\n'),
    "calls": ("meetings", "transcripts/powershell-community-call", 'exclude = ["**/*_Notes.md"]\n'),
}
QUESTIONS = [
    "how do I request time off",
    "what are the rules for travel reimbursement",
    "when is the next data visualization meetup",
    "what did the PowerShell community call discuss about modules",
    "how are pull requests reviewed",
    "who approves new software tools",
    "where do I find onboarding checklists",
]
IDLE = 120  # the engine's [server] idle in the bench config; it is stopped at the end anyway


@dataclass
class Row:
    session: int
    pid: int
    first_result: float
    rss: float = 0.0
    pss: float = 0.0


def sources_missing(sources: dict[str, tuple[str, str, str]]) -> bool:
    """True, having said which, when a source folder (``sources``: name -> kind, folder, options) is missing from
    ../shared/data."""
    missing = [where for _, where, _ in sources.values() if not (DATA / where).is_dir()]
    if missing:
        print(f"shared data missing: {', '.join(missing)}", file=sys.stderr)
    return bool(missing)


def write_config(folder: Path) -> Path:
    config = folder / "corpus.toml"
    sources = "".join(f'\n[[sources]]\nname = "{name}"\nkind = "{kind}"\npath = {json.dumps(str(DATA / where))}\n'
                      f"{extra}" for name, (kind, where, extra) in SOURCES.items())
    config.write_text(f'[corpus]\npath = "store"\n\n[server]\nidle = {IDLE}\n{sources}')
    return config


def corpus_command() -> list[str]:
    """The console script Claude Code runs, when installed beside this Python."""
    script = Path(sys.executable).with_name("corpus")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cli.main"]


def published(store: Path) -> bool:
    return (store / "published").is_dir() and any((store / "published").iterdir())


def build(config: Path) -> float:
    started = time.perf_counter()
    subprocess.run([*corpus_command(), "--config", str(config), "ingest"], check=True, cwd=config.parent,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def memory_mb(pid: int) -> tuple[float, float]:
    """RSS and PSS of a process in MB (0 when it is gone)."""
    try:
        rss = _field(Path(f"/proc/{pid}/status").read_text(), "VmRSS:")
        pss = _field(Path(f"/proc/{pid}/smaps_rollup").read_text(), "Pss:")
    except (FileNotFoundError, ProcessLookupError):
        return 0.0, 0.0
    return rss / 1024, pss / 1024


def _field(text: str, name: str) -> float:
    return float(next(line.split()[1] for line in text.splitlines() if line.startswith(name)))


def children() -> set[int]:
    mine = str(os.getpid())
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == mine:  # after the state letter comes the parent's pid
            found.add(int(stat.parent.name))
    return found


async def open_sessions(config: Path, extra: list[str], n: int, env: dict[str, str],
                        errlog) -> tuple[list[Row], int]:
    """``n`` sessions opened one after another and kept open; memory and store copies read once all are open."""
    from mcp import ClientSession, StdioServerParameters, stdio_client

    params = StdioServerParameters(command=corpus_command()[0],
                                   args=[*corpus_command()[1:], "--config", str(config), "serve", *extra],
                                   env=env, cwd=str(config.parent))
    rows = []
    async with AsyncExitStack() as stack:
        for number in range(1, n + 1):
            before = children()
            started = time.perf_counter()
            read, write = await stack.enter_async_context(stdio_client(params, errlog=errlog))
            session = await stack.enter_async_context(ClientSession(read, write))
            await session.initialize()
            result = await session.call_tool("search", {"query": QUESTIONS[number % len(QUESTIONS)], "limit": 5})
            elapsed = time.perf_counter() - started
            if result.is_error or not result.structured_content["hits"]:
                raise RuntimeError(f"session {number}: no hits: {result.content[0].text[:200]}")
            (pid,) = children() - before
            rows.append(Row(number, pid, elapsed))
            print(f"  session {number}: first result after {elapsed:.2f} s", file=sys.stderr, flush=True)
        for row in rows:
            row.rss, row.pss = memory_mb(row.pid)
        copies = len(list((config.parent / "store").glob("reader-*")))
    return rows, copies


def stop(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while _state(pid) != "Z":
        if time.monotonic() > deadline:
            raise RuntimeError(f"engine {pid} did not stop within 30 s")
        time.sleep(0.1)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def table(label: str, sessions: list[Row], copies: int, engine: tuple[float, float] | None) -> str:
    lines = [f"{label}", f"  {'session':<9}{'corpus serve RSS MB':>21}{'PSS MB':>9}{'start -> first result s':>26}"]
    for row in sessions:
        lines.append(f"  {row.session:<9}{row.rss:>21.0f}{row.pss:>9.0f}{row.first_result:>26.2f}")
    rss = sum(r.rss for r in sessions)
    pss = sum(r.pss for r in sessions)
    if engine is not None:
        lines.append(f"  {'engine':<9}{engine[0]:>21.0f}{engine[1]:>9.0f}")
        rss, pss = rss + engine[0], pss + engine[1]
    lines.append(f"  {'total':<9}{rss:>21.0f}{pss:>9.0f}")
    lines.append(f"  private copies of the store while all sessions are open: {copies}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build the store in (or reuse it from) this folder")
    args = parser.parse_args()
    if sources_missing(SOURCES):
        return 2

    folder = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="corpus-sessions-"))
    folder.mkdir(parents=True, exist_ok=True)
    runtime = Path(tempfile.mkdtemp(prefix="cs-", dir="/tmp"))  # a fresh engine: no earlier one answers
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)  # for engine_pid here, and for the sessions' `corpus serve`
    env = {"XDG_RUNTIME_DIR": str(runtime)}
    config = write_config(folder)
    try:
        if published(folder / "store"):
            built = "reused"
        else:
            print(f"ingesting the three real sources into {folder / 'store'}", file=sys.stderr, flush=True)
            built = f"built in {build(config):.0f} s"
        with (folder / "serve.log").open("w") as errlog:
            print("sessions through the shared engine", file=sys.stderr, flush=True)
            shared, shared_copies = asyncio.run(open_sessions(config, [], args.sessions, env, errlog))
            engine = engine_pid(config)
            engine_memory = memory_mb(engine)
            stop(engine)
            print("sessions with --standalone", file=sys.stderr, flush=True)
            standalone, standalone_copies = asyncio.run(
                open_sessions(config, ["--standalone"], args.sessions, env, errlog))
        chunks = subprocess.run([*corpus_command(), "--config", str(config), "status", "--json"], check=True,
                                capture_output=True, text=True).stdout
        total_chunks = sum(s["chunks"] for s in json.loads(chunks)["sources"])
        print()
        print(f"{args.sessions} stdio sessions on one store ({total_chunks:,} chunks of the three real sources, "
              f"store {built}); machine: {os.cpu_count()} CPUs, 1-min load average {os.getloadavg()[0]:.1f}")
        print()
        print(table("corpus serve (front + shared engine)", shared, shared_copies, engine_memory))
        print()
        print(table("corpus serve --standalone (before: model and store copy per session)", standalone,
                    standalone_copies, None))
        print()
        fifth = shared[args.sessions - 1]
        later = shared[1:args.sessions]
        print(f"target: sessions after the first <= 150 MB and <= 1 s to the first result: "
              f"max RSS {max(r.rss for r in later):.0f} MB, max {max(r.first_result for r in later):.2f} s; "
              f"session {args.sessions}: {fifth.rss:.0f} MB, {fifth.first_result:.2f} s (reported, not asserted)")
    finally:
        leftover = engine_pid(config)
        if leftover:
            stop(leftover)
        shutil.rmtree(runtime, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
