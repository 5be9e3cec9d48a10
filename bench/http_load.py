"""HTTP load test: many MCP clients search `corpus serve --http` while `corpus ingest` publishes new generations.

A publish makes the server swap to a new snapshot while searches are in flight; that swap must not break any of
them (issue 10, item 1; target: 0 errors, 20 concurrent clients p95 < 250 ms). Everything is real and loopback
only: a generated Markdown corpus in a temp folder, the real CLI for every ingest, `corpus serve --http` on
127.0.0.1 as a subprocess, and the `mcp` SDK client over streamable HTTP, one session per client.

Each client searches without pause. Once every client has answered, the ``--ingests`` ingests run one after the
other, each adding a document with a unique marker word and changing an existing one, and publishing; the server
swaps generations while searches are in flight. Clients keep searching until they have made ``--searches`` each,
every ingest has published, and they see the last marker (looked for up to a minute), then search once more for it;
so with ingests the number of requests depends on how long the ingests take. The table gives errors by kind,
latency of the answered searches, requests per second while any request was in flight, whether the server is
still alive (else its exit status), the exceptions in the server's log, and how many clients see the last marker.

    python bench/http_load.py [--clients 20] [--searches 15] [--ingests 3] [--no-ingest] [--protocol auto] [--unchecked]
                                [--keep DIR]

Bounded: every call times out after a minute, a client stops after 1,000 searches, the whole run after
``--timeout`` seconds, and the server is stopped (SIGINT, then SIGKILL) at the end. ``tests/test_load.py`` runs
the same scenario, smaller, with ingests in its own process (the model loaded once) to stay within its time.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mcp import Client, ClientSession

CALL_TIMEOUT = 60.0  # seconds for one search
WATCH_SECONDS = 60.0  # how long a client keeps looking for a publish's new text
MAX_SEARCHES = 1000  # per client, whatever the ingests take
TEAMS = ["payments", "search", "platform", "mobile", "data", "security", "support", "billing"]
TOPICS = {
    "On-call rotation": "The {team} on-call rotation changes every Monday at 10:00; the hand-off is a short call "
                        "where the outgoing engineer walks through open incidents and pages from the last week.",
    "Expense policy": "Meals on {team} trips are reimbursed up to {n} EUR a day; receipts go into the expense tool "
                      "within thirty days, and the team lead approves anything above the limit.",
    "Deployments": "The {team} service deploys from the main branch through the pipeline; a release needs a green "
                   "build and one approval, and a rollback is one click in the deploy dashboard for {n} days.",
    "Access requests": "Access to {team} production databases is requested in the access portal; the data owner "
                       "approves it and it expires after {n} days unless renewed.",
}
QUERIES = ["how does the on-call hand-off work?", "what is the meal expense limit?", "who approves a release?",
           "how do I get database access?", "rollback deploy dashboard", "expense receipts deadline"]
MARKER_DOCS = [
    "# Fire drill\n\nThe fire drill assembly point is the north car park; the drill code word is {marker}.\n",
    "# Parking permits\n\nParking permits for the new garage are collected at reception under code {marker}.\n",
    "# Wellbeing budget\n\nEach person may claim a yearly wellbeing budget; label the claim {marker} in the tool.\n",
]


Ingest = Callable[[Path], str | None]  # ingests and publishes the store of this config; None, or why it failed


def marker(k: int) -> str:
    """The unique word that ingest ``k`` (from 1) adds; searches for it find only that document."""
    return f"zorblax{k}quint"


@dataclass
class Outcome:
    """What the clients, the ingests and the server did during one run."""

    clients: int
    ingests: int
    requests: int = 0
    latencies: list[float] = field(default_factory=list, repr=False)  # seconds, answered searches only
    spans: list[tuple[float, float]] = field(default_factory=list, repr=False)  # every request's start and end
    errors: Counter = field(default_factory=Counter)  # kind -> count
    seen_last: int = 0  # clients whose final search found the last marker
    visible_after: list[float] = field(default_factory=list)  # seconds from the last publish to a client seeing it
    server_exit: int | None = None  # None while alive at the end
    server_errors: Counter = field(default_factory=Counter)  # exception lines in the server's log
    wall: float = 0.0

    def error(self, kind: str) -> None:
        self.errors[kind[:160]] += 1

    def busy(self) -> float:
        """Seconds during which at least one request was in flight."""
        total, end = 0.0, float("-inf")
        for start, stop in sorted(self.spans):
            if stop > end:
                total += stop - max(start, end)
                end = stop
        return total


def write_corpus(folder: Path, docs: int = 32) -> Path:
    """A generated Markdown corpus and its corpus.toml in ``folder``; returns the config's path."""
    rng = np.random.default_rng(10)
    (folder / "docs").mkdir(parents=True, exist_ok=True)
    for i in range(docs):
        team = TEAMS[i % len(TEAMS)]
        sections = [f"## {title}\n\n{text.format(team=team, n=int(rng.integers(20, 90)))}\n"
                    for title, text in TOPICS.items()]
        rng.shuffle(sections)
        (folder / "docs" / f"{team}-{i:02d}.md").write_text(f"# {team.title()} handbook {i}\n\n" + "\n".join(sections))
    config = folder / "corpus.toml"
    # every search embeds its query: the bench repeats a few questions, which a server's cache would answer free
    config.write_text('[corpus]\npath = "store"\n\n[server]\nquery_cache = 0\n\n'
                      '[[sources]]\nname = "handbook"\nkind = "docs"\npath = "docs"\n')
    return config


def cli(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "cli.main", "--config", str(config), *args]


def cli_ingest(config: Path) -> str | None:
    """Runs `corpus ingest`, logging to ingest.log beside the config; None when it worked, else why not."""
    log = config.parent / "ingest.log"
    with log.open("a") as out:
        try:
            run = subprocess.run(cli(config, "ingest"), cwd=config.parent, stdout=out, stderr=subprocess.STDOUT,
                                 timeout=600)
        except subprocess.TimeoutExpired:
            return "ingest killed after 600 s"
    if run.returncode == 0:
        return None
    lines = log.read_text(errors="replace").strip().splitlines()
    return f"ingest exit {run.returncode}: {lines[-1] if lines else ''}"


def change(folder: Path, k: int) -> None:
    """Ingest ``k``'s edits: a new document with its marker, and a changed line in an existing one."""
    text = MARKER_DOCS[(k - 1) % len(MARKER_DOCS)].format(marker=marker(k))
    (folder / "docs" / f"news-{k}.md").write_text(text)
    first = sorted((folder / "docs").glob("*-00.md"))[0]
    first.write_text(first.read_text() + f"\n## Update {k}\n\nRevision {k} of this page moved the stand-up to {k}pm.\n")


def start_server(config: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """`corpus serve --http` on a free loopback port, once it has answered a first search (model loaded)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with log.open("w") as out:
        proc = subprocess.Popen(cli(config, "serve", "--http", "--host", "127.0.0.1", "--port", str(port)),
                                cwd=config.parent, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/mcp"
    deadline = time.monotonic() + 300
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"corpus serve exited with {proc.returncode}: {log.read_text()[-1000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                stop_server(proc)
                raise RuntimeError(f"corpus serve did not listen on 127.0.0.1:{port} within 300 s") from None
            time.sleep(0.1)

    async def warm() -> None:
        async with _session(url) as session:
            result = await session.call_tool("search", {"query": "warm up"}, read_timeout_seconds=300)
            if result.is_error:
                raise RuntimeError(f"first search failed: {result.content[0].text}")

    try:
        asyncio.run(warm())
    except BaseException:
        stop_server(proc)
        raise
    return proc, url


def stop_server(proc: subprocess.Popen) -> None:
    # SIGINT: uvicorn re-raises SIGTERM after shutdown, so atexit would not remove the private store copy.
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass(frozen=True)
class Clients:
    """How the load's clients speak: ``protocol`` as the SDK's ``Client(mode=…)`` takes it ("auto" negotiates the
    newest the server speaks, 2026-07-28 with ours: one self-contained POST a call; "legacy" the initialize
    handshake and a session id), and whether each result is checked against the tool's output schema (the SDK
    does; it is a third of the client's CPU, which a real caller spends on its own machine, not the server's)."""

    protocol: str = "legacy"
    checked: bool = True


@asynccontextmanager
async def _session(url: str, clients: Clients = Clients()) -> AsyncIterator[ClientSession]:
    """A connected MCP client session over streamable HTTP, with its own HTTP connection pool."""
    async with Client(url, mode=clients.protocol) as client:
        session = client.session
        if not clients.checked:
            session.validate_tool_result = _unchecked
        yield session


async def _unchecked(name: str, result: object) -> None:
    return None


def _shows(hits: list[dict] | None, word: str) -> bool:
    return bool(hits) and any(word in hit["text"] for hit in hits)


def _kind(exc: BaseException) -> str:
    """One line naming what went wrong, grouping alike failures together."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class Run:
    """One scenario: the clients and the ingest driver on one event loop."""

    def __init__(self, config: Path, url: str, server: subprocess.Popen, outcome: Outcome, searches: int,
                 ingest: Ingest, clients: Clients = Clients()):
        self.config, self.url, self.server, self.outcome, self.searches = config, url, server, outcome, searches
        self.ingest, self.clients = ingest, clients
        self.published = 0  # ingests finished so far
        self.last_published = 0.0  # when the last one finished (monotonic)
        self.loaded = asyncio.Event()  # every client has answered a first search: the ingests may start
        self.answered: set[int] = set()

    async def ingests(self) -> None:
        await self.loaded.wait()
        for k in range(1, self.outcome.ingests + 1):
            change(self.config.parent, k)
            try:
                failed = await asyncio.to_thread(self.ingest, self.config)
            except Exception as exc:
                failed = _kind(exc)
            if failed:
                self.outcome.error(f"ingest {k}: {failed}")
            self.published, self.last_published = k, time.monotonic()

    async def search(self, session: ClientSession, query: str) -> list[dict] | None:
        """One counted search: its hits, or None after recording an error."""
        self.outcome.requests += 1
        start = time.monotonic()
        try:
            result = await session.call_tool("search", {"query": query, "limit": 5}, read_timeout_seconds=CALL_TIMEOUT)
        except Exception as exc:
            self.outcome.error(_kind(exc))
            return None
        finally:
            self.outcome.spans.append((start, time.monotonic()))
        if result.is_error:
            self.outcome.error(f"tool error: {result.content[0].text if result.content else ''}")
            return None
        hits = (result.structured_content or {}).get("hits") or []
        if not hits:
            self.outcome.error("no hits")
            return None
        self.outcome.latencies.append(time.monotonic() - start)
        return hits

    async def client(self, i: int) -> None:
        try:
            async with _session(self.url, self.clients) as session:
                await self._searches(i, session)
        except Exception as exc:
            self.outcome.error(f"session: {_kind(exc)}")
        finally:
            self._answered(i)

    def _answered(self, i: int) -> None:
        self.answered.add(i)
        if len(self.answered) == self.outcome.clients:
            self.loaded.set()

    async def _searches(self, i: int, session: ClientSession) -> None:
        """Searches without pause until this client has made its share, every ingest has published, and it sees
        the last one's marker (or has looked for it for WATCH_SECONDS)."""
        last, made, seen = self.outcome.ingests, 0, False
        while made < MAX_SEARCHES and self.server.poll() is None:
            final = self.published == last
            watched = seen or not last or time.monotonic() > self.last_published + WATCH_SECONDS
            if final and made >= self.searches and watched:
                break
            # once ingest k has published, every other search looks for its marker
            wanted = marker(self.published) if self.published and (final or made % 2) else None
            hits = await self.search(session, f"{wanted} code word" if wanted else QUERIES[(i + made) % len(QUERIES)])
            made += 1
            self._answered(i)
            if last and final and not seen and _shows(hits, marker(last)):
                seen = True
                self.outcome.visible_after.append(time.monotonic() - self.last_published)
        if last and self.server.poll() is None:
            seen = _shows(await self.search(session, f"{marker(last)} code word"), marker(last))
            self.outcome.seen_last += seen  # not `+= await …`: that reads the count before the await

    async def main(self, timeout: float) -> None:
        tasks = [asyncio.create_task(self.client(i)) for i in range(self.outcome.clients)]
        if self.outcome.ingests:
            tasks.append(asyncio.create_task(self.ingests()))
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), timeout)
        except TimeoutError:
            self.outcome.error(f"run stopped after its {timeout:.0f} s time limit")


EXCEPTION_LINE = re.compile(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception|Exit|Interrupt)|Segmentation fault|Fatal Python "
                            r"error)\b:?\s*(.*)$")


def server_exceptions(log: str) -> Counter:
    """Exception lines (the last line of each traceback, and fatal errors) in the server's log."""
    found: Counter = Counter()
    for line in log.splitlines():
        hit = EXCEPTION_LINE.match(line.strip())
        if hit and hit.group(1) != "KeyboardInterrupt":
            found[line.strip()[:160]] += 1
    return found


def run_load(folder: Path, clients: int = 20, searches: int = 15, ingests: int = 3, timeout: float = 900,
             ingest: Ingest = cli_ingest, speak: Clients = Clients()) -> Outcome:
    """The whole scenario in ``folder``: build and ingest a corpus, serve it, load it, publish; what happened.

    ``ingest`` writes and publishes the store (the CLI by default; a test passes one that reuses its loaded model).
    """
    config = write_corpus(folder)
    failed = ingest(config)
    if failed:
        raise RuntimeError(f"first {failed} (in {folder})")
    server_log = folder / "server.log"
    server, url = start_server(config, server_log)
    outcome = Outcome(clients=clients, ingests=ingests)
    started = time.monotonic()
    try:
        asyncio.run(Run(config, url, server, outcome, searches, ingest, speak).main(timeout))
    finally:
        outcome.wall = time.monotonic() - started
        outcome.server_exit = server.poll()
        outcome.server_errors = server_exceptions(server_log.read_text(errors="replace"))  # not its shutdown's
        stop_server(server)
    return outcome


def status(code: int | None) -> str:
    if code is None:
        return "alive"
    if code < 0:
        return f"died: signal {-code} ({signal.Signals(-code).name}, shell exit {128 - code})"
    return f"died: exit {code}"


def table(o: Outcome) -> str:
    ms = np.percentile(np.array(o.latencies) * 1000, [50, 95, 99]) if o.latencies else [float("nan")] * 3
    busy = o.busy()
    rows: list[tuple[str, str] | str] = [
        ("clients", str(o.clients)),
        ("ingests publishing meanwhile", str(o.ingests)),
        ("requests (searches)", str(o.requests)),
        ("errors", str(sum(o.errors.values()))),
        *(f"{n:>8}  {kind}" for kind, n in o.errors.most_common()),
        ("p50 / p95 / p99 ms (answered)", " / ".join(f"{v:.0f}" for v in ms)),
        ("requests/s while in flight", f"{o.requests / busy:.1f}" if busy else "-"),
        ("wall time s", f"{o.wall:.1f}"),
        ("server at the end", status(o.server_exit)),
        ("exceptions in server log", str(sum(o.server_errors.values()))),
        *(f"{n:>8}  {line}" for line, n in o.server_errors.most_common(8)),
    ]
    if o.ingests:
        rows.append(("clients seeing the last marker", f"{o.seen_last} / {o.clients}"))
        if o.visible_after:
            rows.append(("new text visible after s (max)", f"{max(o.visible_after):.1f}"))
    width = max(len(row[0]) for row in rows if isinstance(row, tuple))
    return "\n".join(row if isinstance(row, str) else f"{row[0]:<{width}}  {row[1]}" for row in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20, help="concurrent MCP clients (default 20)")
    parser.add_argument("--searches", type=int, default=15, help="searches per client (default 15)")
    parser.add_argument("--ingests", type=int, default=3, help="ingests publishing during the load (default 3)")
    parser.add_argument("--no-ingest", action="store_true", help="search only, no publish meanwhile")
    parser.add_argument("--timeout", type=float, default=900, help="stop the load after this many seconds")
    parser.add_argument("--keep", type=Path, help="work in this folder and leave it there (logs, store)")
    parser.add_argument("--protocol", default="legacy", help="the clients' Client(mode=…): legacy (default), auto")
    parser.add_argument("--unchecked", action="store_true",
                        help="clients skip the SDK's output-schema check of each result (client CPU off the server's "
                             "cores)")
    args = parser.parse_args()
    ingests = 0 if args.no_ingest else args.ingests
    with tempfile.TemporaryDirectory(prefix="corpus-load-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"{args.clients} clients x {args.searches} searches, {ingests} ingests, in {folder}", file=sys.stderr)
        outcome = run_load(folder, args.clients, args.searches, ingests, args.timeout,
                           speak=Clients(args.protocol, not args.unchecked))
        print(table(outcome))
    clean = not outcome.errors and outcome.server_exit is None and (not ingests or outcome.seen_last == args.clients)
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
