"""The read side of the store: the newest published generation, refreshed when a new one appears.

Readers never write the store. The keyword index is read from the generation's manifest copy,
opened immutable; the vectors from a private copy of the generation's Chroma folder (opening a
Chroma folder writes to it), or from the Chroma server when ``[corpus] url`` is set.

A search holds its snapshot from start to end (``Replica.reading``): a newer generation replaces
the current one for later readers, and the old one is closed only when its last reader is done.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from corpus.config import Config
from store.chroma import ChunkStore, ModelInfo, open_client
from store.publish import current_generation, hold, vectors_of
from store.vectors import Matrix, Stored, load_matrix, stored

log = logging.getLogger(__name__)

_UNLOADED = object()
CHECK_EVERY = 1.0  # seconds between looks for a newer generation
SWAP_WAIT = 1.0  # seconds the search that noticed a newer generation waits for it to open
MMAP_BYTES = 1 << 31  # SQLite's own ceiling; only the pages read are mapped in
ROWS_KEPT = 20_000  # chunks (text and metadata, ~2.5 kB each) a reader keeps: the passages that come up again


class Vectors:
    """A generation's vectors, opened: a private copy of its Chroma folder, or the Chroma server.

    Generations whose vectors are links to the same files (``vectors_of``: an annotation-only publish)
    share one, so a new generation from `corpus dream` costs a reader no copy; closed with its last snapshot.
    """

    def __init__(self, config: Config, model: ModelInfo, generation: Path):
        self.key = vectors_of(generation)
        self.private: Path | None = None
        self._users = 1
        self._lock = threading.Lock()
        self._rows: dict[str, tuple[str, dict]] = {}
        try:
            if config.corpus.url:
                self.client = open_client(config.store_path, config.corpus.url)
            else:
                self.private = Path(tempfile.mkdtemp(prefix=f"reader-{os.getpid()}-", dir=config.store_path))
                shutil.copytree(generation / "chroma", self.private / "chroma")
                self.client = open_client(self.private, None)
            self.store = ChunkStore(self.client, model, create=False)
        except BaseException:
            self._close()
            raise

    def rows(self, ids: Sequence[str]) -> dict[str, tuple[str, dict]]:
        """(text, metadata) of those of these chunks that exist, each read from Chroma once: a Chroma read
        costs a millisecond alone but queues behind every other one, and took most of the server's time
        under 20 concurrent sessions. The vectors never change, so neither do their rows."""
        with self._lock:
            found = {i: self._rows[i] for i in ids if i in self._rows}
        missing = [i for i in ids if i not in found]
        if missing and self.store.collection is not None:
            got = self.store.collection.get(ids=missing, include=["documents", "metadatas"])
            read = dict(zip(got["ids"], zip(got["documents"], got["metadatas"], strict=True), strict=True))
            with self._lock:
                if len(self._rows) + len(read) > ROWS_KEPT:
                    self._rows.clear()
                self._rows.update(read)
            found.update(read)
        return found

    def share(self) -> Vectors:
        with self._lock:
            self._users += 1
        return self

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            last = self._users == 0
        if last:
            self._close()

    def _close(self) -> None:
        if hasattr(self, "client"):
            try:
                self.client.close()  # releases this copy's Chroma system only; other copies keep theirs
            except Exception as exc:  # closing must never take a search down with it
                log.warning("closing the vectors of %s: %s", self.key, exc)
        if self.private is not None:
            shutil.rmtree(self.private, ignore_errors=True)


class Snapshot:
    """One generation, opened: a Chroma collection and the keyword/manifest database.

    Each thread gets its own read-only connection to the immutable manifest copy, so concurrent
    searches never queue on one connection.
    """

    def __init__(self, config: Config, model: ModelInfo, generation: Path, vectors: Vectors | None = None):
        """``vectors``: those of the snapshot this one replaces, used when they are this generation's too."""
        self.generation = generation
        self._claim = hold(generation)  # the writer keeps this generation until the claim is closed
        try:
            same = vectors is not None and vectors.key == vectors_of(generation)
            self.vectors = vectors.share() if same else Vectors(config, model, generation)
            self.store = self.vectors.store
            self.private = self.vectors.private
            self._uri = f"{(generation / 'manifest.sqlite').as_uri()}?mode=ro&immutable=1"
            self._local = threading.local()
            self._connections: list[sqlite3.Connection] = []
            self._lock = threading.Lock()
            self._readers = 0
            self._retired = False
            self._matrix: Matrix | None | object = _UNLOADED
            self.db.execute("SELECT 1 FROM sqlite_master LIMIT 1")  # a broken manifest fails here, not mid-search
        except BaseException:
            self._close()
            raise

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection to the generation's manifest and keyword index."""
        connection = getattr(self._local, "db", None)
        if connection is None:
            connection = sqlite3.connect(self._uri, uri=True, check_same_thread=False)
            # pages read in place from the OS cache, not copied by a read() each: a quarter less CPU for the
            # thousands of vectors a narrow filter scores (the file never changes while it is held)
            connection.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
            self._local.db = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    @property
    def matrix(self) -> Matrix | None:
        """Every vector of a small store in memory (None for a large one), loaded by the first search."""
        if self._matrix is _UNLOADED:
            db = self.db  # before the lock: a thread's first look at `db` takes it too
            with self._lock:
                if self._matrix is _UNLOADED:
                    self._matrix = load_matrix(db)
        return self._matrix

    def stored(self, chunk_ids: Sequence[str]) -> Stored:
        """The chunks' own vectors: from memory for a small store, else from the manifest's copy; a chunk
        without one (a store written before the copy) is left out."""
        matrix = self.matrix
        if matrix is not None:
            return matrix.stored(chunk_ids)
        return stored(self.db, chunk_ids)

    def acquire(self) -> bool:
        """Count a reader in; False once the snapshot is retired (the caller takes the newer one)."""
        with self._lock:
            if self._retired:
                return False
            self._readers += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._readers -= 1
            last = self._retired and self._readers == 0
        if last:
            self._close()

    def retire(self) -> None:
        """No new readers; closed now if none is reading, else when the last one is done."""
        with self._lock:
            self._retired = True
            idle = self._readers == 0
        if idle:
            self._close()

    def _close(self) -> None:
        for connection in getattr(self, "_connections", ()):
            connection.close()
        if hasattr(self, "vectors"):
            self.vectors.release()
        os.close(self._claim)


class Replica:
    """Hands out the current snapshot; swaps to a newer generation within about a second of it appearing.

    A newer generation is opened in a thread of its own (a copy of its vectors and the load of their matrix take
    seconds at 100k chunks) while searches go on reading the current one; the search that noticed it waits up to
    ``SWAP_WAIT`` for it, so a small store's change is seen at once and a large one's never stalls a search.
    """

    def __init__(self, config: Config, model: ModelInfo):
        self.config = config
        self.model = model
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._checked = 0.0
        self._swap: _Swap | None = None  # the newer generation being opened
        _remove_orphans(config.store_path)
        atexit.register(self.close)

    @contextmanager
    def reading(self) -> Iterator[Snapshot | None]:
        """The newest snapshot, held until the block ends; None when nothing is published."""
        while True:
            snapshot = self._current()
            if snapshot is None or snapshot.acquire():
                break
        try:
            yield snapshot
        finally:
            if snapshot is not None:
                snapshot.release()

    def _current(self) -> Snapshot | None:
        now = time.monotonic()
        snapshot = self._snapshot
        if snapshot is not None and now - self._checked < CHECK_EVERY:
            return snapshot
        with self._lock:
            self._checked = now
            generation = current_generation(self.config.store_path)
            current = self._snapshot
            if current is None or generation is None:  # nothing to read meanwhile, or the store is gone
                self._snapshot = self._open(generation) if generation is not None else None
                if current is not None:
                    current.retire()
                return self._snapshot
            if current.generation == generation or self._swap is not None:
                return current  # the same, or a newer one already being opened: read this one meanwhile
            swap = self._swap = _Swap(generation, current)
            # held for the opening thread: the new generation takes these vectors over when they are its own
            vectors = current.vectors.share()
            threading.Thread(target=self._open_newer, args=(swap, vectors), daemon=True,
                             name="corpus-generation").start()
        swap.opened.wait(SWAP_WAIT)
        return self._snapshot

    def _open_newer(self, swap: _Swap, vectors: Vectors) -> None:
        """Opens ``swap``'s generation and makes it current; a failure is logged and the current one stays (the
        next look after ``CHECK_EVERY`` tries again)."""
        try:
            newer = self._open(swap.generation, vectors, warm=True)
        except Exception as exc:
            log.warning("cannot open generation %s, still reading the previous one: %s", swap.generation.name, exc)
            newer = None
        finally:
            vectors.release()
        with self._lock:  # unless the store went, came back or was closed meanwhile
            installed = newer is not None and self._snapshot is swap.replaces
            if installed:
                self._snapshot = newer
            if self._swap is swap:
                self._swap = None
        if newer is not None:
            (swap.replaces if installed else newer).retire()
        swap.opened.set()

    def _open(self, generation: Path, vectors: Vectors | None = None, warm: bool = False) -> Snapshot:
        """A generation removed while we opened it (a newer one is current by then) is retried with the newer;
        ``warm`` loads its matrix too, before any search reads it."""
        while True:
            try:
                snapshot = Snapshot(self.config, self.model, generation, vectors)
            except (OSError, sqlite3.Error):
                newer = current_generation(self.config.store_path)
                if newer is None or newer == generation:
                    raise
                generation = newer
                continue
            if warm:
                try:
                    snapshot.matrix  # noqa: B018 - loaded now, off the path of the searches still on the old one
                except BaseException:
                    snapshot.retire()
                    raise
            return snapshot

    def close(self) -> None:
        with self._lock:
            if self._snapshot is not None:
                self._snapshot.retire()
                self._snapshot = None


class _Swap:
    """A newer generation being opened to replace a snapshot, and when that is done (opened or failed)."""

    def __init__(self, generation: Path, replaces: Snapshot):
        self.generation = generation
        self.replaces = replaces
        self.opened = threading.Event()


def _remove_orphans(store_path: Path) -> None:
    """Private copies left by reader processes that were killed."""
    for folder in store_path.glob("reader-*-*"):
        pid = folder.name.split("-")[1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
