"""Publish a read generation: an immutable copy of the store that search processes read from.

Chroma's embedded store may be opened by one process only: opening it replays its log into the
HNSW files, so a reader opening the live store would write under the writer (the corruption peers
report). The writer therefore publishes, after each ingest that changed something, a generation:
a consistent copy of the Chroma folder and of the manifest (with the keyword index). Readers copy
the Chroma part privately and open the manifest part immutable, so they never write the store.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import uuid
from pathlib import Path

from corpus.errors import CorpusError

READERS = "readers.lock"  # readers hold a shared lock on it while they read the generation
KEEP = 2  # generations kept; readers copy theirs within seconds of it appearing


def published_root(store_path: Path) -> Path:
    return store_path / "published"


def current_generation(store_path: Path) -> Path | None:
    """The folder of the newest published generation, or None before the first ingest."""
    root = published_root(store_path)
    try:
        name = (root / "CURRENT").read_text().strip()
    except FileNotFoundError:
        return None
    return root / name if name else None


def mark_unpublished(store_path: Path) -> None:
    """Note that the live store now differs from the published one; survives a killed run."""
    root = published_root(store_path)
    root.mkdir(parents=True, exist_ok=True)
    (root / "UNPUBLISHED").touch()


def needs_publish(store_path: Path) -> bool:
    return (published_root(store_path) / "UNPUBLISHED").exists() or current_generation(store_path) is None


def publish(store_path: Path, with_vectors: bool) -> Path:
    """Copy the store as it is now into a new generation and make it current (atomically)."""
    root = published_root(store_path)
    root.mkdir(parents=True, exist_ok=True)
    # The random part keeps names unique when a store is deleted and rebuilt under a running reader,
    # whose old generation would otherwise share the new one's name.
    generation = root / f"{max(map(_number, _generations(root)), default=0) + 1}-{uuid.uuid4().hex[:12]}"
    staging = root / f".staging-{generation.name}"
    shutil.rmtree(staging, ignore_errors=True)
    pointer = root / ".CURRENT.tmp"
    try:
        staging.mkdir()
        if with_vectors:
            source = store_path / "chroma"
            shutil.copytree(source, staging / "chroma", ignore=shutil.ignore_patterns("chroma.sqlite3*"))
            _backup(source / "chroma.sqlite3", staging / "chroma" / "chroma.sqlite3")
        _backup(store_path / "manifest.sqlite", staging / "manifest.sqlite")
        staging.rename(generation)
        pointer.write_text(generation.name)
        os.replace(pointer, root / "CURRENT")
    except (OSError, sqlite3.Error) as exc:  # most often a full disk: readers keep the generation they have
        for partial in (staging, generation):
            shutil.rmtree(partial, ignore_errors=True)
        pointer.unlink(missing_ok=True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CorpusError(f"cannot publish the new store to {root}: {reason}. Searches keep the previous one; "
                          "free some space and run `corpus ingest` again, which publishes it") from None
    (root / "UNPUBLISHED").unlink(missing_ok=True)
    for old in sorted(_generations(root), key=_number)[:-KEEP]:
        _remove_unless_read(old)
    return generation


def hold(generation: Path) -> int:
    """A reader's claim on a generation (a shared lock): the writer removes no generation still claimed.

    The claim goes when the descriptor is closed, or with the process that holds it.
    """
    fd = os.open(generation / READERS, os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        if not (generation / "manifest.sqlite").exists():
            raise FileNotFoundError(f"generation {generation.name} was removed")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _remove_unless_read(generation: Path) -> None:
    """An old generation goes unless a reader still holds it; a later publish tries again."""
    try:
        fd = os.open(generation / READERS, os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError:
        shutil.rmtree(generation, ignore_errors=True)
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return  # still read: kept until its readers let go
    try:
        shutil.rmtree(generation, ignore_errors=True)
    finally:
        os.close(fd)  # a reader waiting for the lock then finds the generation gone and takes the newest


def _generations(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if p.name.split("-")[0].isdigit()]


def _number(generation: Path) -> int:
    return int(generation.name.split("-")[0])


def _backup(source: Path, target: Path) -> None:
    """A transactionally consistent copy of a live SQLite database, in rollback-journal mode."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")
