"""`corpus ingest --watch`: ingest again, for the sources whose files changed, once the changes settle.

File-system events (inotify through watchfiles) on each source's folder, or on the folder of a source that is one
file (a Slack export zip saved over, a one-file docs source), are gathered until the sources have been quiet for a
moment, so a copied folder or an export unpacked file by file is one run, not one per file.
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from corpus.config import Config
from corpus.errors import CorpusError, StoreLockedError
from ingest.embedder import Embedder
from ingest.pipeline import RunResult, ingest
from ingest.progress import Progress

QUIET_SECONDS = 1.0  # a change is acted on once the sources have been this long without another
MAX_WAIT_SECONDS = 30.0  # changes that never settle (a long copy) still get a run this often
LOCK_RETRY_SECONDS = 1.0


class WatchError(CorpusError):
    """A folder could not be watched (gone, or the system's inotify limit reached)."""


@dataclass(frozen=True)
class Watched:
    """What to watch for one source: a folder (recursively), or one file through its folder."""

    source: str
    folder: Path
    file: Path | None = None

    def covers(self, path: Path) -> bool:
        return path == self.file if self.file is not None else path.is_relative_to(self.folder)


def watched(config: Config, names: Iterable[str] | None = None) -> list[Watched]:
    selected = [config.source(n) for n in names] if names else list(config.sources)
    found = []
    for source in selected:
        path = source.path.resolve()
        found.append(Watched(source.name, path) if path.is_dir() else Watched(source.name, path.parent, path))
    return found


def affected(changes: Iterable[str], targets: list[Watched], store: Path) -> set[str]:
    """The sources a batch of changed paths touches; the store's own files never count."""
    names = set()
    for raw in changes:
        path = Path(raw)
        if path.is_relative_to(store):
            continue
        names.update(t.source for t in targets if t.covers(path))
    return names


def watch(config: Config, names: list[str] | None = None, say: Callable[[str], None] | None = None) -> int:
    """Ingest the sources named (all by default), then again whenever their files change, until interrupted."""
    say = say or (lambda line: print(line, flush=True))
    targets = watched(config, names)
    store = config.store_path.resolve()
    embedder = Embedder(config.embedding.model, config.embedding.device, config.embedding.batch_size)
    changes: queue.Queue[str | WatchError] = queue.Queue()
    stop = threading.Event()
    with _sigterm_interrupts():
        try:
            for folders, recursive in _watch_sets(targets):
                if folders:
                    threading.Thread(target=_feed, args=(folders, recursive, changes, stop), daemon=True).start()
            _run(config, names or None, embedder, say)
            embedder.model  # noqa: B018  (loaded once now, so the first change is not also a model load)
            say(f"watching {', '.join(sorted({str(t.file or t.folder) for t in targets}))} (Ctrl-C to stop)")
            while True:
                due = affected(_settled(changes), targets, store)
                if due:
                    _run(config, sorted(due), embedder, say)
        except KeyboardInterrupt:
            say("stopped watching")
            return 0
        finally:
            stop.set()


def _run(config: Config, names: list[str] | None, embedder: Embedder, say: Callable[[str], None]) -> RunResult:
    """One incremental ingest; when another run holds the store, wait for it and say so once."""
    waiting = False
    while True:
        try:
            result = ingest(config, names, embedder=embedder, progress=_progress())
            break
        except StoreLockedError as exc:
            if not waiting:
                say(f"waiting: {exc}")
                waiting = True
            time.sleep(LOCK_RETRY_SECONDS)
        except KeyboardInterrupt:
            say("interrupted during a run: what it wrote is kept, and the next run reads the rest")
            raise
    say(summary(result))
    return result


def summary(result: RunResult) -> str:
    """One line for a run: when, and per source what changed."""
    parts = []
    for name, s in result.sources.items():
        if s.error:
            parts.append(f"{name}: {s.error}")
            continue
        counts = [f"{n} {what}" for n, what in ((s.added, "added"), (s.updated, "updated"),
                                               (s.deleted, "deleted"), (s.failed, "failed")) if n]
        if s.chunks:
            counts.append(f"{s.chunks} chunk{'s' * (s.chunks != 1)} written")
        parts.append(f"{name}: {', '.join(counts) or 'unchanged'}")
    return f"{datetime.now():%H:%M:%S} {'; '.join(parts) or 'no sources'} ({result.seconds:.1f} s)"


def _settled(changes: queue.Queue[str | WatchError]) -> list[str]:
    """Changed paths, once no new one has come for QUIET_SECONDS (or MAX_WAIT_SECONDS have passed)."""
    batch = [changes.get()]
    deadline = time.monotonic() + MAX_WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            batch.append(changes.get(timeout=QUIET_SECONDS))
        except queue.Empty:
            break
    for item in batch:
        if isinstance(item, WatchError):
            raise item
    return batch


def _watch_sets(targets: list[Watched]) -> list[tuple[list[Path], bool]]:
    """Folders watched recursively (folder sources), and folders of one-file sources watched on their own level."""
    deep = sorted({t.folder for t in targets if t.file is None})
    shallow = sorted({t.folder for t in targets if t.file is not None} - set(deep))
    return [(deep, True), (shallow, False)]


def _feed(folders: list[Path], recursive: bool, changes: queue.Queue[str | WatchError], stop: threading.Event) -> None:
    from watchfiles import watch as file_events

    try:
        for batch in file_events(*folders, recursive=recursive, stop_event=stop, step=50, debounce=200,
                                 raise_interrupt=False):
            for _, path in batch:
                changes.put(path)
    except Exception as exc:  # the watch must not go silent: the main thread raises it
        changes.put(WatchError(f"cannot watch {', '.join(map(str, folders))}: {exc}"))


class _Quiet(Progress):
    """No per-source progress lines off a terminal: a watched run says what it did in its one summary line."""

    def start(self, source: str, total: int) -> None:
        self.source, self.total, self.done, self.chunks = source, total, 0, 0

    def advance(self, files: int, chunks: int) -> None:
        pass


def _progress() -> Progress:
    return Progress() if sys.stderr.isatty() else _Quiet()


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (systemctl stop) ends the watch as Ctrl-C does."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
