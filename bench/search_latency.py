"""Search latency benchmark: how fast a warm search answers over a store of N chunks (target p95 < 50 ms at 100k).

It measures, with the real embedding model embedding every query:

- the query-embedding step alone, as searches run it (ONNX Runtime by default, ``[embedding] query_runtime``), to
  show how much of a search is the model, and with torch in the diagnostic rows;
- the search API in-process (``Searcher.search``) in its three modes: hybrid, dense and keyword;
- end to end through the MCP server over stdio (``corpus serve``), and over streamable HTTP (``--http``),
  plus the time from process start until ``initialize`` and ``tools/list`` are answered.

Each path gets a warm-up of 10 queries, then ``--queries`` timed ones cycling through about forty natural-language
questions, some with source, date or people filters. p50, p95 and mean go in one table. In-process paths run
interleaved per question, so load from other processes falls on all of them alike. Two diagnostic rows repeat the
embedding and hybrid search with torch at one intra-op thread, and notes split filtered from unfiltered queries,
time Chroma's query alone and list the most expensive keyword questions, to show where the time goes.

The store is synthetic: embedding 100k real chunks takes hours on two cores, and search latency does not depend on
what the vectors mean, only on how many there are, their dimension and the index. So each chunk gets a random unit
vector (float32, 384 dimensions like all-MiniLM-L6-v2) and a text assembled deterministically from a few thousand
real English words drawn with a Zipf-like distribution (common words really are common, which is what makes BM25
expensive), with topic words, titles, sections, dates and authors. Everything is written through the writer that
ingest uses (``store.writer.writing``: lock, manifest with its keyword index, publish), so readers open a store laid
out as an ingest leaves it. Dense hits are meaningless on random vectors; their cost is not.

``--server`` keeps the vectors in a Chroma server instead of the embedded store: the bench starts ``chroma run`` on
loopback over DIR/chroma-server, points ``[corpus] url`` at it, builds and measures through it and stops it at the
end. The build runs in a child process, so the bench's own RSS is that of a searcher; the report gives the RSS of
each process: the bench, the ``corpus serve`` processes it starts, the Chroma server and the writer's peak.

    python bench/search_latency.py [--chunks 100000] [--queries 200] [--keep DIR] [--server]

``--keep DIR`` builds in DIR and leaves it there. A build stopped part way (Ctrl-C, a crash) resumes from its last
batch on the next run with the same ``--seed`` and mode, and a smaller one is extended; one of the asked size is
reused and only measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import multiprocessing
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import corpus  # noqa: E402,F401  (offline environment before any heavy import)
from corpus.records import Chunk, Citation, Document, Locator, chunk_id, document_id  # noqa: E402

MODEL = "all-MiniLM-L6-v2"
DIMENSION = 384
SOURCE = "synthetic"
WARMUP = 10
SEED = 20240611
CHUNKS_PER_DOC = 10
DOCS_PER_BATCH = 1000  # 10k chunks per begin/upsert/commit round
TARGET = "p95 < 50 ms warm at 100k chunks"
STATE = "bench.json"  # the build's key and timings, saved after each batch
CHROMA = Path(sys.executable).with_name("chroma")  # the CLI of the chromadb package in this environment

# Each synthetic document is about one of these; its words are sprinkled through its chunks, so the questions below
# find documents that really are about them (by keyword; the vectors are random).
TOPICS: dict[str, str] = {
    "Expense reimbursement": "expense expenses receipt receipts reimbursement travel meal hotel per diem limit report",
    "On-call rotation": "on-call rotation pager hand-off shift incident escalation weekend primary secondary",
    "Vacation and leave": "vacation leave holiday holidays approval manager days parental sick request calendar",
    "Security incident response": "security incident breach response checklist containment forensic severity report",
    "Deployment pipeline": "deploy deployment production pipeline release rollback staging service build",
    "Access requests": "access request database analytics permission role approval account credentials",
    "Data retention": "data retention customer records deletion GDPR privacy archive years policy",
    "New hire onboarding": "onboarding new hire laptop first week checklist buddy orientation accounts",
    "Performance reviews": "performance review reviews feedback rating calibration goals promotion manager",
    "Remote work": "remote work country abroad home office equipment stipend timezone",
    "Brand guidelines": "brand logo colours typography guidelines design assets website",
    "Key management": "API keys rotate rotation secrets vault credentials token expiry",
    "Hiring and interviews": "interview interviews hiring candidate senior engineers panel loop offer",
    "Data center migration": "migration data center cloud servers cutover network storage 2019",
    "Meeting rooms": "meeting room rooms booking calendar office floor",
    "Payroll": "payroll salary payslip tax contact finance bonus",
    "Backups": "backup backups restore database snapshot recovery procedure",
    "Code review": "code review reviewer pull request approval tests style guidelines",
    "Accessibility": "accessibility public websites contrast screen reader WCAG requirements",
    "Contractors": "contractor contractors vendor agreement onboarding invoice",
    "Procurement": "procurement purchase software vendor contract approval budget dollars",
    "Postmortems": "postmortem incident template timeline root cause action items blameless",
    "Month-end close": "finance month-end close accounts ledger reconciliation deadline",
    "Open source": "open source contribution license policy repository publish",
    "Customer support": "customer support tickets escalation path severity response time",
    "Cloud costs": "cloud costs budget allocation teams tagging billing",
    "Passwords": "password passwords policy manager multi-factor authentication length",
    "Personal devices": "personal devices phone laptop work rules mobile management",
    "Blog and website": "blog post website publish editorial review content",
    "Training budget": "training budget conference conferences courses learning books",
    "Uptime and SLAs": "service level agreement uptime availability SLA downtime credits",
    "Workplace conduct": "harassment concern report conduct confidential human resources",
    "Design reviews": "design review feature proposal architecture document approval",
    "Company history": "history company founders founded early years office",
    "Team offsites": "offsite team planning venue agenda travel budget",
    "Government contracts": "government contract federal agencies compliance procurement state",
}
SECTIONS = ("Overview", "Background", "Process", "Who to contact", "Exceptions", "Examples", "Timeline",
            "Frequently asked questions", "Responsibilities", "Tools", "History", "Related policies")
PEOPLE = ("Ada Lovelace", "Grace Hopper", "Alan Turing", "Katherine Johnson", "Edsger Dijkstra", "Barbara Liskov",
          "Donald Knuth", "Margaret Hamilton", "Ken Thompson", "Frances Allen", "John Backus", "Radia Perlman",
          "Leslie Lamport", "Shafi Goldwasser", "Tim Berners-Lee", "Hedy Lamarr", "Niklaus Wirth", "Jean Sammet",
          "Dennis Ritchie", "Sophie Wilson", "Vint Cerf", "Anita Borg", "Butler Lampson", "Adele Goldberg")
QUERIES: tuple[str, ...] = (
    "how do I submit an expense report for travel?",
    "what is the on-call hand-off process?",
    "who approves vacation requests?",
    "how long do we keep customer data?",
    "what are the steps to deploy a service to production",
    "security incident response checklist",
    "how do I request access to the analytics database",
    "parental leave policy",
    "what laptop can new hires choose",
    "how are performance reviews calibrated",
    "can I work remotely from another country for a month?",
    "where are the brand guidelines for the logo",
    "how to rotate API keys",
    "interview process for senior engineers",
    "what happened in the 2019 data center migration",
    "meal expense limit when travelling abroad",
    "how do I book a meeting room",
    "who is the contact for payroll questions",
    "backup and restore procedure for the main database",
    "code review guidelines",
    "accessibility requirements for public websites",
    "how to onboard a new contractor",
    "procurement process for software purchases over 10000 dollars",
    "incident postmortem template",
    "what does finance need at month-end close",
    "open source contribution policy",
    "how do we handle GDPR deletion requests",
    "which days are company holidays this year",
    "escalation path for customer support tickets",
    "first week checklist for new employees",
    "how are cloud costs allocated to teams",
    "what is the password policy",
    "rules for using personal devices for work",
    "how to publish a blog post on the company website",
    "training budget and conferences",
    "what is our service level agreement for uptime",
    "how do I report a harassment concern",
    "design review process for new features",
    "history of the company and its founders",
    "planning a team offsite",
    "government contracts with federal agencies",
    "what was decided about the time and the first new system?",  # common words only: BM25's worst case
)
DATE_RANGE = (datetime(2021, 1, 1, tzinfo=UTC), datetime(2023, 7, 1, tzinfo=UTC))


# -- synthetic store ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticModel:
    """What ChunkStore needs of a model: its name (checked by readers) and dimension."""

    name: str = MODEL
    dimension: int = DIMENSION


def vocabulary(size: int = 5000) -> list[str]:
    """Real English words, most frequent first: the whole words of the model's WordPiece vocabulary.

    BERT's vocabulary lists its whole words roughly by corpus frequency after the first ~2000 entries
    (characters and unused slots), which is exactly the order a Zipf draw wants.
    """
    from ingest.embedder import resolve_model

    path = Path(resolve_model(MODEL)) / "vocab.txt"
    words = []
    for line in path.read_text(encoding="utf-8").splitlines()[1996:]:
        if line.isascii() and line.isalpha() and line.islower() and (len(line) > 1 or line in ("a", "i")):
            words.append(line)
            if len(words) == size:
                break
    return words


class TextGenerator:
    """Deterministic chunk texts: Zipf-distributed words in sentences, with the document's topic words mixed in."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.words = np.array(vocabulary(), dtype=object)
        weights = 1.0 / (np.arange(len(self.words)) + 2.7) ** 1.05
        self.cdf = np.cumsum(weights / weights.sum())
        self.topics = {title: np.array(words.split(), dtype=object) for title, words in TOPICS.items()}

    def chunk_texts(self, topic: str, count: int) -> list[str]:
        rng = self.rng
        lengths = rng.integers(100, 201, size=count)
        total = int(lengths.sum())
        idx = np.minimum(np.searchsorted(self.cdf, rng.random(total)), len(self.words) - 1)
        words = self.words[idx]
        topical = rng.random(total) < 0.06
        words[topical] = self.topics[topic][rng.integers(0, len(self.topics[topic]), size=int(topical.sum()))]
        texts, start = [], 0
        for length in lengths:
            texts.append(self._sentences(words[start:start + int(length)]))
            start += int(length)
        return texts

    def _sentences(self, words: np.ndarray) -> str:
        out, i, n = [], 0, len(words)
        while i < n:
            size = int(self.rng.integers(6, 23))
            sentence = list(words[i:i + size])
            i += size
            sentence[0] = sentence[0][:1].upper() + sentence[0][1:]
            if len(sentence) > 8:
                sentence[len(sentence) // 2] += ","
            out.append(" ".join(sentence) + ".")
        return " ".join(out)


def documents(n_chunks: int, docs_dir: Path, seed: int) -> Iterator[tuple[Document, list[Chunk], str, np.ndarray]]:
    """(document, its chunks, item stamp, their unit vectors), deterministically from ``seed``."""
    from ingest.chunker import header_for

    rng = np.random.default_rng(seed)
    gen = TextGenerator(rng)
    topics = list(TOPICS)
    span = (datetime(2025, 12, 31, tzinfo=UTC) - datetime(2018, 1, 1, tzinfo=UTC)).total_seconds()
    n_docs = -(-n_chunks // CHUNKS_PER_DOC)
    for number in range(n_docs):
        count = min(CHUNKS_PER_DOC, n_chunks - number * CHUNKS_PER_DOC)
        topic = topics[int(rng.integers(0, len(topics)))]
        folder = topic.lower().replace(" ", "-")
        native_id = f"{folder}/doc-{number:06d}.md"
        doc_id = document_id(SOURCE, native_id)
        extra = " ".join(gen.words[rng.integers(50, 1500, size=2)])
        title = f"{topic}: {extra}"
        updated = datetime(2018, 1, 1, tzinfo=UTC) + timedelta(seconds=float(rng.random() * span))
        authors = tuple(PEOPLE[int(i)] for i in rng.choice(len(PEOPLE), size=int(rng.integers(1, 3)), replace=False))
        uri = (docs_dir / native_id).as_uri()
        texts = gen.chunk_texts(topic, count)
        digest = hashlib.sha1("\n".join(texts).encode()).hexdigest()
        doc = Document(id=doc_id, source=SOURCE, kind="docs", native_id=native_id, title=title,
                       citation=Citation(uri, f"{SOURCE}/{native_id}"), blocks=(), digest=digest,
                       created=updated - timedelta(days=int(rng.integers(0, 400))), updated=updated, authors=authors)
        chunks = []
        for ordinal, text in enumerate(texts):
            section = SECTIONS[ordinal % len(SECTIONS)]
            locator = Locator(headings=(title, section))
            slug = section.lower().replace(" ", "-")
            chunks.append(Chunk(id=chunk_id(doc_id, ordinal), doc_id=doc_id, ordinal=ordinal, text=text,
                                header=header_for(doc, locator), locator=locator,
                                citation=Citation(f"{uri}#{slug}", f"{SOURCE}/{native_id} § {title} › {section}")))
        vectors = rng.standard_normal((count, DIMENSION), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        yield doc, chunks, f"{len(digest) * count}:{int(updated.timestamp() * 1e9)}", vectors


@dataclass
class Build:
    """Build timings in seconds, summed over every run that added to the build (a stopped build resumes)."""

    seconds: float = 0.0
    generate: float = 0.0
    upsert: float = 0.0
    commit: float = 0.0
    publish: float = 0.0
    runs: int = 0
    writer_peak_rss: int = 0  # bytes, the largest of the writer processes
    reused: bool = False


def write_config(folder: Path, url: str | None) -> Path:
    docs = folder / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    config = folder / "corpus.toml"
    server = f"url = {json.dumps(url)}\n" if url else ""
    # query_cache = 0: every timed search embeds its query (the bench cycles through ~40 questions)
    config.write_text(f'[corpus]\npath = "store"\n{server}\n[server]\nquery_cache = 0\n\n'
                      f'[[sources]]\nname = "{SOURCE}"\nkind = "docs"\npath = {json.dumps(str(docs))}\n')
    return config


def published_chunks(store_path: Path) -> int | None:
    """Chunks in the current published generation's manifest, or None when there is none."""
    import sqlite3

    from store.publish import current_generation

    generation = current_generation(store_path)
    if generation is None:
        return None
    with sqlite3.connect(f"{(generation / 'manifest.sqlite').as_uri()}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT coalesce(sum(chunks), 0) FROM documents WHERE pending IS NULL").fetchone()[0])


def written_chunks(store_path: Path) -> int:
    """Chunks the live manifest holds as written (a stopped build's too)."""
    import sqlite3

    path = store_path / "manifest.sqlite"
    if not path.exists():
        return 0
    with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT coalesce(sum(chunks), 0) FROM documents WHERE pending IS NULL").fetchone()[0])


def prepare(folder: Path, n_chunks: int, layout: dict) -> bool:
    """Keep DIR's store if it was built with the same seed and mode and holds at most ``n_chunks``, else start
    afresh; True when it holds exactly ``n_chunks``, published.

    A smaller or stopped build is extended rather than rebuilt: every build's first k chunks are the same (for k a
    multiple of CHUNKS_PER_DOC), so a 1M build stopped at 600k can be measured with ``--chunks 600000`` and later
    finished with ``--chunks 1000000``.
    """
    from store.publish import needs_publish

    store_path = folder / "store"
    state = folder / STATE
    saved = json.loads(state.read_text())["key"] if state.exists() else {}
    written = written_chunks(store_path)
    if any(saved.get(k) != v for k, v in layout.items()) or written > n_chunks or written % CHUNKS_PER_DOC:
        for old in (store_path, folder / "chroma-server"):
            shutil.rmtree(old, ignore_errors=True)
        state.unlink(missing_ok=True)
        return False
    return written == n_chunks and not needs_publish(store_path)


def saved_build(folder: Path) -> Build:
    state = folder / STATE
    return Build(**json.loads(state.read_text())["build"]) if state.exists() else Build()


def save_build(folder: Path, layout: dict, build: Build) -> None:
    part = folder / f".{STATE}.tmp"
    part.write_text(json.dumps({"key": layout, "build": asdict(build)}, indent=1))
    os.replace(part, folder / STATE)


def in_child(call: Callable, *args):
    """``call(*args)`` in a fresh process, for writing: the bench's RSS afterwards is a searcher's, and the writer's
    peak is its own."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(call, *args).result()


def open_for_writing(folder: Path) -> float:
    """What the next ingest does first to a kept store: one written by an older corpus gets the indexes this one
    reads, and is published with them. Seconds taken."""
    from connectors import load_config
    from store.writer import writing

    started = time.perf_counter()
    with writing(load_config(folder / "corpus.toml"), SyntheticModel(), note=lambda text: print(text, file=sys.stderr)):
        pass
    return time.perf_counter() - started


def build_store(folder: Path, n_chunks: int, layout: dict, watch: int | None = None) -> Build:
    """Write the synthetic chunks through ``store.writer.writing``, as an ingest writes, then publish.

    Documents the manifest already holds are skipped (a stopped build resumes); progress is saved after each batch.
    ``watch`` is the Chroma server's pid, whose RSS the progress lines show.
    """
    from connectors import load_config
    from store.writer import writing

    build = saved_build(folder)
    build.runs += 1
    session = time.perf_counter()
    before = build.seconds
    with writing(load_config(folder / "corpus.toml"), SyntheticModel(), note=lambda text: print(text, file=sys.stderr)
                 ) as writer:
        manifest = writer.manifest
        done = manifest.entries(SOURCE)
        skip = {entry.doc_id for entry in done.values()}
        written = sum(entry.chunks for entry in done.values())
        if written:
            print(f"  resuming: {written:,} chunks already written", file=sys.stderr)
        run_id = manifest.start_run()
        writer.changing()
        rows = (row for row in documents(n_chunks, folder / "docs", layout["seed"]) if row[0].id not in skip)
        added = 0
        while True:
            t = time.perf_counter()
            batch = [row for _, row in zip(range(DOCS_PER_BATCH), rows, strict=False)]
            if not batch:
                break
            vectors = np.concatenate([v for *_, v in batch])
            build.generate += time.perf_counter() - t
            t = time.perf_counter()
            manifest.begin([(doc.id, doc.source, doc.native_id, len(chunks)) for doc, chunks, _, _ in batch])
            writer.store.upsert([(doc, chunks) for doc, chunks, _, _ in batch], vectors)
            build.upsert += time.perf_counter() - t
            t = time.perf_counter()
            manifest.commit([(doc, chunks, stamp) for doc, chunks, stamp, _ in batch], vectors)
            build.commit += time.perf_counter() - t
            written += len(vectors)
            added += len(vectors)
            elapsed = time.perf_counter() - session
            build.seconds = before + elapsed
            save_build(folder, layout, build)
            rate = added / elapsed
            server = f", Chroma server RSS {human(rss(watch)[0])}" if watch else ""
            print(f"  built {written:>9,}/{n_chunks:,} chunks  ({rate:,.0f} chunks/s, "
                  f"{(n_chunks - written) / rate / 60:.0f} min to go{server})", file=sys.stderr, flush=True)
        manifest.finish_run(run_id, {"seconds": build.seconds, "synthetic": True})
        published = time.perf_counter()
    build.publish += time.perf_counter() - published  # writing() publishes as its block ends
    build.seconds = before + time.perf_counter() - session
    build.writer_peak_rss = max(build.writer_peak_rss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    save_build(folder, layout, build)
    return build


@contextlib.contextmanager
def chroma_server(folder: Path) -> Iterator[tuple[str, int]]:
    """``chroma run`` on loopback over DIR/chroma-server: (its url, its pid); stopped when the block ends."""
    port = free_port()
    log = folder / "chroma-server.log"
    with log.open("ab") as out:
        # Its own session: a Ctrl-C reaches the bench, which stops the server after the writer has let go.
        proc = subprocess.Popen([str(CHROMA), "run", "--path", str(folder / "chroma-server"), "--host", "127.0.0.1",
                                 "--port", str(port)], stdout=out, stderr=out, start_new_session=True,
                                preexec_fn=_die_with_parent)
    try:
        wait_listening(proc, port, log, "Chroma server")
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        stop(proc, signal.SIGINT)


def server_vectors(config) -> int:
    """How many vectors the Chroma server holds (a kept build is checked against its manifest)."""
    from store.chroma import ChunkStore, open_client

    client = open_client(config.store_path, config.corpus.url)
    try:
        return ChunkStore(client, SyntheticModel(), create=False).count()
    finally:
        client.close()


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the bench dies, even by SIGKILL (no server left on a kept folder)."""
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(proc: subprocess.Popen, port: int, log: Path, what: str, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start listening within {seconds:.0f} s") from None
            time.sleep(0.05)


def stop(proc: subprocess.Popen, how: signal.Signals) -> None:
    proc.send_signal(how)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- processes ---------------------------------------------------------------------------------------------------


def rss(pid: int) -> tuple[int, int]:
    """(resident now, peak resident) of a process in bytes; (0, 0) once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0, 0
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return tuple(int(fields.get(name, "0 kB").split()[0]) * 1024 for name in ("VmRSS", "VmHWM"))


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        found = children.get(todo.pop(), [])
        out += found
        todo += found
    return out


def serving_processes(exclude: int | None) -> list[tuple[str, int, int]]:
    """(command, RSS, peak RSS) of each process the bench has started, the Chroma server's tree left out."""
    skip = {exclude, *descendants(exclude)} if exclude else set()
    out = []
    for pid in descendants(os.getpid()):
        if pid in skip:
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        if "multiprocessing.resource_tracker" in " ".join(argv):  # left by the build child; serves nothing
            continue
        now, peak = rss(pid)
        out.append((" ".join(argv[argv.index("-m") + 1:] if "-m" in argv else argv)[:70], now, peak))
    return out


# -- measuring ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    text: str
    sources: tuple[str, ...] = ()
    people: tuple[str, ...] = ()
    after: datetime | None = None
    before: datetime | None = None

    @property
    def filtered(self) -> bool:
        return bool(self.sources or self.people or self.after or self.before)

    def filters(self):
        from store.filters import Filters

        return Filters(sources=self.sources, people=self.people, after=self.after, before=self.before)

    def tool_args(self) -> dict:
        args: dict = {"query": self.text, "limit": 8}
        if self.sources:
            args["sources"] = list(self.sources)
        if self.people:
            args["people"] = list(self.people)
        if self.after:
            args["after"] = self.after.date().isoformat()
        if self.before:
            args["before"] = self.before.date().isoformat()
        return args


def query_set() -> list[Query]:
    """The questions, some with a source filter, some with a date range, a few with a person."""
    out = []
    for i, text in enumerate(QUERIES):
        sources = (SOURCE,) if i % 5 == 1 else ()
        after, before = DATE_RANGE if i % 7 == 3 else (None, None)
        people = (PEOPLE[i % len(PEOPLE)],) if i % 11 == 5 else ()
        out.append(Query(text, sources, people, after, before))
    return out


@dataclass
class Series:
    path: str
    ms: list[float] = field(default_factory=list)
    queries: list[Query] = field(default_factory=list)
    errors: int = 0
    note: str = ""
    processes: list[tuple[str, int, int]] = field(default_factory=list)  # (command, RSS, peak RSS) serving it

    def add(self, query: Query, seconds: float) -> None:
        self.ms.append(seconds * 1000)
        self.queries.append(query)

    def stats(self, which: Callable[[Query], bool] = lambda q: True) -> tuple[float, float, float, int]:
        values = np.array([m for m, q in zip(self.ms, self.queries, strict=True) if which(q)])
        if not len(values):
            return float("nan"), float("nan"), float("nan"), 0
        return (float(np.percentile(values, 50)), float(np.percentile(values, 95)), float(values.mean()),
                len(values))


def cycle(queries: list[Query], n: int) -> list[Query]:
    return [queries[i % len(queries)] for i in range(n)]


def measure_api(config_path: Path, embedder, queries: list[Query],
                n: int) -> tuple[list[Series], dict[str, float], list[Series], list[Series]]:
    """Embedding alone and Searcher.search in each mode, warm, interleaved per query so that load on the machine
    falls on every path alike; also the first snapshot and first query (cold), and two diagnostic paths."""
    from connectors import load_config
    from server.search import Searcher

    config = load_config(config_path)
    searcher = Searcher(config, embedder)
    cold: dict[str, float] = {}
    t = time.perf_counter()
    with searcher.replica.reading():  # embedded: copies the generation's Chroma folder privately, opens it
        pass
    cold[f"replica open ({'Chroma server' if config.corpus.url else 'embedded: private copy'})"] = \
        time.perf_counter() - t
    t = time.perf_counter()
    searcher.search(queries[0].text, limit=8, mode="hybrid")
    cold["first hybrid query after open"] = time.perf_counter() - t
    encoder = searcher.vectors.embedder  # what searches embed queries with: ONNX Runtime unless configured off
    embed = Series(f"embed only ({getattr(encoder, 'runtime', 'torch')})")
    modes = {mode: Series(f"API {mode}") for mode in ("hybrid", "dense", "keyword")}

    def one(q: Query, record: bool) -> None:
        t = time.perf_counter()
        encoder.embed([q.text])
        if record:
            embed.add(q, time.perf_counter() - t)
        for mode, series in modes.items():
            t = time.perf_counter()
            hits = searcher.search(q.text, limit=8, filters=q.filters(), mode=mode)
            if record:
                series.add(q, time.perf_counter() - t)
                series.errors += not hits  # not an error as such, but every question should find something here

    try:
        for q in cycle(queries, WARMUP):
            one(q, record=False)
        for q in cycle(queries, n):
            one(q, record=True)
        diagnostics = one_torch_thread(searcher, embedder, queries, n)
        components = [chroma_only(searcher, embedder, queries, n)]
    finally:
        searcher.replica.close()
    return [embed, *modes.values()], cold, diagnostics, components


def one_torch_thread(searcher, embedder, queries: list[Query], n: int) -> list[Series]:
    """Embedding and hybrid search again with torch limited to one intra-op thread (not the product's setting).

    torch starts one thread per core; when another process holds a core, each of the forward pass's parallel
    regions waits for the descheduled thread, and a one-query embedding gets many times slower.
    """
    import torch

    threads = torch.get_num_threads()
    embed, hybrid = Series("embed, 1 torch thread*"), Series("hybrid, 1 torch thread*")
    torch.set_num_threads(1)
    try:
        for i, q in enumerate(cycle(queries, WARMUP + n)):
            t = time.perf_counter()
            embedder.embed([q.text])
            elapsed = time.perf_counter() - t
            t2 = time.perf_counter()
            hits = searcher.search(q.text, limit=8, filters=q.filters(), mode="hybrid")
            if i >= WARMUP:
                embed.add(q, elapsed)
                hybrid.add(q, time.perf_counter() - t2)
                hybrid.errors += not hits
    finally:
        torch.set_num_threads(threads)
    return [embed, hybrid]


def chroma_only(searcher, embedder, queries: list[Query], n: int) -> Series:
    """The vector store's own cost: Chroma's query with a precomputed vector, as Searcher._dense asks it."""
    vectors = {q.text: embedder.embed([q.text]) for q in queries}
    s = Series("Chroma query only")
    with searcher.replica.reading() as snapshot:
        for q in cycle(queries, WARMUP + n):
            t = time.perf_counter()
            snapshot.store.collection.query(query_embeddings=vectors[q.text], n_results=50,
                                            where=q.filters().where(), include=["documents", "metadatas"])
            s.add(q, time.perf_counter() - t)
    del s.ms[:WARMUP], s.queries[:WARMUP]
    return s


def keyword_breakdown(config_path: Path, queries: list[Query]) -> list[tuple[float, int, str]]:
    """Per question: keyword search ms (best of 3, no filter) and how many chunks its words match."""
    import sqlite3

    from connectors import load_config
    from store import keyword
    from store.publish import current_generation

    generation = current_generation(load_config(config_path).store_path)
    assert generation is not None
    db = sqlite3.connect(f"{(generation / 'manifest.sqlite').as_uri()}?mode=ro&immutable=1", uri=True)
    out = []
    try:
        for q in queries:
            best = min(_timed(lambda q=q: keyword.search(db, q.text, 50)) for _ in range(3))
            expression = keyword.match_expression(q.text)
            matched = db.execute("SELECT count(*) FROM chunk_text WHERE chunk_text MATCH ?", (expression,)).fetchone()
            out.append((best * 1000, int(matched[0]), q.text))
    finally:
        db.close()
    return sorted(out, reverse=True)


def _timed(call: Callable[[], object]) -> float:
    t = time.perf_counter()
    call()
    return time.perf_counter() - t


async def _session_run(open_streams, queries: list[Query], n: int, label: str, started: float,
                       chroma_pid: int | None) -> tuple[Series, float, float]:
    """Over an open transport: initialize + list_tools (time since start), first call, warm-up, n timed calls;
    then, with the session still open, the RSS of the processes serving it."""
    from mcp import ClientSession

    async with open_streams as streams, ClientSession(streams[0], streams[1]) as session:
        await session.initialize()
        tools = await session.list_tools()
        ready = time.perf_counter() - started
        assert "search" in {t.name for t in tools.tools}, tools
        series = Series(label)
        t = time.perf_counter()
        await _call(session, queries[0], series, record=False)
        first = time.perf_counter() - t
        for q in cycle(queries, WARMUP):
            await _call(session, q, series, record=False)
        for q in cycle(queries, n):
            await _call(session, q, series, record=True)
        series.processes = serving_processes(exclude=chroma_pid)
        return series, ready, first


async def _call(session, q: Query, series: Series, record: bool) -> None:
    t = time.perf_counter()
    result = await session.call_tool("search", q.tool_args(), read_timeout_seconds=600)
    elapsed = time.perf_counter() - t
    if result.is_error or not (result.structured_content or {}).get("hits"):
        series.errors += 1
        if series.errors == 1:
            print(f"  {series.path}: unexpected result for {q.text!r}: {str(result)[:500]}", file=sys.stderr)
    if record:
        series.add(q, elapsed)


def measure_stdio(config_path: Path, queries: list[Query], n: int, log: Path,
                  chroma_pid: int | None) -> tuple[Series, float, float]:
    from mcp import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=sys.executable, args=["-m", "cli.main", "--config", str(config_path),
                                                                 "serve"], cwd=str(REPO))

    async def main() -> tuple[Series, float, float]:
        with log.open("w") as errlog:
            started = time.perf_counter()
            return await _session_run(stdio_client(params, errlog=errlog), queries, n, "MCP stdio hybrid", started,
                                      chroma_pid)

    return asyncio.run(main())


def measure_http(config_path: Path, queries: list[Query], n: int, log: Path,
                 chroma_pid: int | None) -> tuple[Series, float, float]:
    from mcp.client.streamable_http import streamable_http_client

    port = free_port()
    with log.open("w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "cli.main", "--config", str(config_path), "serve", "--http",
                                 "--host", "127.0.0.1", "--port", str(port)], cwd=REPO, stdout=out, stderr=out)
    try:
        wait_listening(proc, port, log, "HTTP server")

        async def main() -> tuple[Series, float, float]:
            url = f"http://127.0.0.1:{port}/mcp"
            return await _session_run(streamable_http_client(url), queries, n, "MCP HTTP hybrid", started,
                                      chroma_pid)

        return asyncio.run(main())
    finally:
        # SIGINT, not SIGTERM: uvicorn re-raises SIGTERM after its shutdown, so atexit never runs and the server's
        # private copy of the store (about 1 GB at 100k chunks) would stay behind until the next reader starts.
        stop(proc, signal.SIGINT)


# -- report ------------------------------------------------------------------------------------------------------


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def table(series: list[Series], diagnostics: list[Series]) -> str:
    head = f"{'path':<24} {'p50 ms':>9} {'p95 ms':>9} {'mean ms':>9} {'n':>6} {'RSS':>9}  note"
    lines = [head, "-" * len(head)]
    for s in [*series, None, *diagnostics]:
        if s is None:
            lines.append("-" * len(head))
            continue
        p50, p95, mean, n = s.stats()
        note = s.note or (f"{s.errors} empty/error results" if s.errors else "")
        size = human(sum(now for _, now, _ in s.processes)) if s.processes else ""
        lines.append(f"{s.path:<24} {p50:>9.1f} {p95:>9.1f} {mean:>9.1f} {n:>6} {size:>9}  {note}".rstrip())
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000, help="synthetic chunks in the store")
    parser.add_argument("--queries", type=int, default=200, help="timed queries per path (after 10 warm-up)")
    parser.add_argument("--keep", type=Path, help="build in (or resume, or reuse) this folder and leave it")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--server", action="store_true", help="vectors in a `chroma run` server on loopback")
    parser.add_argument("--no-http", action="store_true", help="skip the streamable HTTP measurement")
    args = parser.parse_args()

    folder = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="corpus-search-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    layout = {"seed": args.seed, "server": args.server}
    try:
        complete = prepare(folder, args.chunks, layout)
        with contextlib.ExitStack() as stack:
            url, chroma_pid = stack.enter_context(chroma_server(folder)) if args.server else (None, None)
            config_path = write_config(folder, url)
            if complete:
                print(f"reusing the store in {folder} ({args.chunks} chunks)", file=sys.stderr)
                opened = in_child(open_for_writing, folder)
                print(f"  opened for writing and closed in {opened:.1f} s", file=sys.stderr)
                build = saved_build(folder)
                build.reused = True
            else:
                print(f"building {args.chunks} synthetic chunks in {folder}", file=sys.stderr)
                build = in_child(build_store, folder, args.chunks, layout, chroma_pid)
            return measure(args, folder, config_path, build, chroma_pid)
    finally:
        if args.keep:
            print(f"\nkept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def measure(args: argparse.Namespace, folder: Path, config_path: Path, build: Build, chroma_pid: int | None) -> int:
    """Every path measured over the built store, then the report."""
    from connectors import load_config
    from ingest.embedder import Embedder

    config = load_config(config_path)
    vectors = server_vectors(config) if chroma_pid else published_chunks(config.store_path)
    chroma_rss = {"after build": rss(chroma_pid)} if chroma_pid else {}
    queries = query_set()
    embedder = Embedder(MODEL)
    t = time.perf_counter()
    embedder.embed(["warm up"])
    model_load = time.perf_counter() - t
    print("measuring the search API in-process", file=sys.stderr)
    load_before = os.getloadavg()[0]
    series, cold, diagnostics, components = measure_api(config_path, embedder, queries, args.queries)
    for s in series:
        s.processes = [("bench: model + in-process searcher", *rss(os.getpid()))]
    keyword_costs = keyword_breakdown(config_path, queries)
    if chroma_pid:
        chroma_rss["after in-process search"] = rss(chroma_pid)

    print("measuring MCP over stdio", file=sys.stderr)
    startup: dict[str, tuple[float, float]] = {}
    stdio, ready, first = measure_stdio(config_path, queries, args.queries, folder / "stdio-server.log", chroma_pid)
    series.append(stdio)
    startup["stdio"] = (ready, first)
    if not args.no_http:
        print("measuring MCP over streamable HTTP", file=sys.stderr)
        try:
            http, ready, first = measure_http(config_path, queries, args.queries, folder / "http-server.log",
                                              chroma_pid)
            series.append(http)
            startup["HTTP"] = (ready, first)
        except Exception as exc:  # optional path: report and go on
            series.append(Series("MCP HTTP hybrid", note=f"skipped: {type(exc).__name__}: {str(exc)[:80]}"))
    if chroma_pid:
        chroma_rss["after MCP"] = rss(chroma_pid)

    load_after = os.getloadavg()[0]
    store_path = folder / "store"
    manifest = sum(p.stat().st_size for p in store_path.glob("manifest.sqlite*"))
    mode = f"Chroma server at {config.corpus.url}" if chroma_pid else "embedded Chroma"
    print()
    print(f"search latency, {args.chunks:,} synthetic chunks ({CHUNKS_PER_DOC} per document, random unit vectors, "
          f"dim {DIMENSION}), {mode}, limit 8, {WARMUP} warm-up then {args.queries} timed queries per path")
    print()
    print(table(series, diagnostics))
    print("* in-process with torch.set_num_threads(1); the product leaves torch at one thread per core")
    print("RSS: of the processes serving the row at its end (the bench itself for in-process rows)")
    print()
    build_text = f"{build.seconds / 60:.1f} min (generate {build.generate:.0f} s, begin+upsert {build.upsert:.0f} s, " \
                 f"commit+keyword {build.commit:.0f} s, publish {build.publish:.0f} s; {build.runs} run(s); writer " \
                 f"peak RSS {human(build.writer_peak_rss)})" + (", reused" if build.reused else "")
    print(f"build: {build_text}")
    print(f"store on disk: vectors {human(du(folder / 'chroma-server') + du(store_path / 'chroma'))} "
          f"({vectors:,} in Chroma), manifest + keyword index {human(manifest)}, published generations "
          f"{human(du(store_path / 'published'))}")
    print(f"machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), Python {sys.version.split()[0]}, "
          f"1-min load average {load_before:.1f} before / {load_after:.1f} after measuring")
    print(f"target: {TARGET}: API hybrid p95 = {series[1].stats()[1]:.1f} ms, MCP stdio hybrid p95 = "
          f"{stdio.stats()[1]:.1f} ms (reported, not asserted)")
    print()
    print("processes (RSS now / peak):")
    for path, processes in [("in-process", series[0].processes), *((s.path, s.processes) for s in series[4:])]:
        for command, now, peak in processes:
            print(f"  {path[:16]:<16} {command:<70} {human(now):>9} / {human(peak)}")
    for when, (now, peak) in chroma_rss.items():
        print(f"  {'Chroma server':<16} {when:<70} {human(now):>9} / {human(peak)}")
    print()
    print("cold costs:")
    print(f"  model load + first embed (in-process)        {model_load * 1000:>9.0f} ms")
    for name, seconds in cold.items():
        print(f"  {name:<44} {seconds * 1000:>9.0f} ms")
    for name, (ready, first) in startup.items():
        print(f"  {name} process start -> initialize+list_tools   {ready * 1000:>7.0f} ms")
        print(f"  {name} first search call (model + replica load) {first * 1000:>7.0f} ms")
    print()
    print("filtered vs unfiltered (p50 / p95 ms):")
    for s in [*series[1:4], diagnostics[1], *components]:
        plain, filt = s.stats(lambda q: not q.filtered), s.stats(lambda q: q.filtered)
        print(f"  {s.path:<23} unfiltered {plain[0]:>7.1f} / {plain[1]:>7.1f} (n={plain[3]})   "
              f"filtered {filt[0]:>7.1f} / {filt[1]:>7.1f} (n={filt[3]})")
    print()
    print("slowest keyword queries (keyword.search, 50 candidates, best of 3, no filter):")
    for ms, matched, text in keyword_costs[:5]:
        print(f"  {ms:>7.1f} ms  {matched:>7,} chunks match  {text}")
    print(f"  median {np.median([c[0] for c in keyword_costs]):.1f} ms over {len(keyword_costs)} questions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
