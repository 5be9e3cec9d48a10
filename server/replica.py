"""The read side of the store: the newest published generation, refreshed when a new one appears.

Readers never write the store. The keyword index is read from the generation's manifest copy,
opened immutable; the vectors from a private copy of the generation's Chroma folder (opening a
Chroma folder writes to it), or from the Chroma server when ``[corpus] url`` is set.
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
from pathlib import Path

from corpus.config import Config
from ingest.publish import current_generation
from ingest.store import ChunkStore, ModelInfo, open_client

log = logging.getLogger(__name__)

CHECK_EVERY = 1.0  # seconds between looks for a newer generation


class Snapshot:
    """One generation, opened: a Chroma collection and the keyword/manifest database."""

    def __init__(self, config: Config, model: ModelInfo, generation: Path):
        self.generation = generation
        self.private: Path | None = None
        if config.corpus.url:
            client = open_client(config.store_path, config.corpus.url)
        else:
            self.private = Path(tempfile.mkdtemp(prefix=f"reader-{os.getpid()}-", dir=config.store_path))
            shutil.copytree(generation / "chroma", self.private / "chroma")
            client = open_client(self.private, None)
        self.store = ChunkStore(client, model, create=False)
        self.db = sqlite3.connect(f"{(generation / 'manifest.sqlite').as_uri()}?mode=ro&immutable=1", uri=True,
                                  check_same_thread=False)

    def close(self) -> None:
        self.db.close()
        if self.private is not None:
            from chromadb.api.shared_system_client import SharedSystemClient

            SharedSystemClient.clear_system_cache()
            shutil.rmtree(self.private, ignore_errors=True)


class Replica:
    """Hands out the current snapshot; swaps to a newer generation within about a second of it appearing."""

    def __init__(self, config: Config, model: ModelInfo):
        self.config = config
        self.model = model
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._checked = 0.0
        _remove_orphans(config.store_path)
        atexit.register(self.close)

    def snapshot(self) -> Snapshot | None:
        """The newest snapshot, or None when nothing was ever ingested."""
        now = time.monotonic()
        if self._snapshot is not None and now - self._checked < CHECK_EVERY:
            return self._snapshot
        with self._lock:
            self._checked = now
            generation = current_generation(self.config.store_path)
            if generation is None:
                return None
            if self._snapshot is None or self._snapshot.generation != generation:
                # Chroma caches clients process-wide; the old one is closed before the new one opens.
                self.close()
                self._snapshot = Snapshot(self.config, self.model, generation)
            return self._snapshot

    def close(self) -> None:
        if self._snapshot is not None:
            self._snapshot.close()
            self._snapshot = None


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
