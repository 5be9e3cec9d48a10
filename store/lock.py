"""One writer at a time: a second `corpus ingest` on the same store is told who holds it."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from corpus.errors import StoreLockedError


class WriterLock:
    def __init__(self, store_path: Path):
        self.path = store_path / "ingest.lock"
        self.file = None

    def __enter__(self) -> WriterLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = self.path.open("a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "unknown"
            self.file.close()
            raise StoreLockedError(
                f"another corpus ingest (pid {holder}) is writing {self.path.parent}; wait for it to finish"
            ) from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(str(os.getpid()))
        self.file.flush()
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()
