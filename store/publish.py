"""Publish a read generation: an immutable copy of the store that search processes read from.

Chroma's embedded store may be opened by one process only: opening it replays its log into the
HNSW files, so a reader opening the live store would write under the writer (the corruption peers
report). The writer therefore publishes, after each ingest that changed something, a generation:
a consistent copy of the Chroma folder and of the manifest (with the keyword index). Readers copy
the Chroma part privately and open the manifest part immutable, so they never write the store.

A generation costs a copy of the store, so nothing is kept for nothing: every generation but the current
one goes as soon as no reader holds it, and a publish that changed only the manifest (`corpus dream`'s
annotations) hard-links the current generation's Chroma files instead of copying them again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sqlite3
import uuid
from pathlib import Path

from corpus.errors import CorpusError

READERS = "readers.lock"  # readers hold a shared lock on it while they read the generation
UNPUBLISHED = "UNPUBLISHED"  # the live store differs from the current generation; empty: the vectors too
MANIFEST_ONLY = "manifest"  # the UNPUBLISHED marker's text when only the manifest changed
VECTORS = "VECTORS"  # in a generation that links its vectors: the generation that first copied them


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


def vectors_of(generation: Path) -> str:
    """Which generation's copy of the vectors this one holds: equal for two generations means the same vectors,
    so a reader that has one open can serve the other's manifest with it."""
    try:
        return (generation / VECTORS).read_text().strip() or generation.name
    except FileNotFoundError:
        return generation.name


def mark_unpublished(store_path: Path, vectors: bool = True) -> None:
    """Note that the live store now differs from the published one; survives a killed run.

    ``vectors=False``: only the manifest changed, so the next publish may link the vectors it has. A change
    to the vectors since the last publish is never forgotten by a later manifest-only mark.
    """
    root = published_root(store_path)
    root.mkdir(parents=True, exist_ok=True)
    marker = root / UNPUBLISHED
    if vectors:
        marker.write_text("")
    elif not marker.exists():
        marker.write_text(MANIFEST_ONLY)


def needs_publish(store_path: Path) -> bool:
    return (published_root(store_path) / UNPUBLISHED).exists() or current_generation(store_path) is None


def publish(store_path: Path, with_vectors: bool) -> Path:
    """Copy the store as it is now into a new generation, make it current (atomically), remove the others.

    Runs under the writer lock, so any staging folder already there was left by a killed publish.
    """
    root = published_root(store_path)
    root.mkdir(parents=True, exist_ok=True)
    for leftover in [*root.glob(".staging-*"), *root.glob(".removing-*")]:
        shutil.rmtree(leftover, ignore_errors=True)
    previous = current_generation(store_path)
    # The random part keeps names unique when a store is deleted and rebuilt under a running reader,
    # whose old generation would otherwise share the new one's name.
    generation = root / f"{max(map(_number, _generations(root)), default=0) + 1}-{uuid.uuid4().hex[:12]}"
    staging = root / f".staging-{generation.name}"
    pointer = root / ".CURRENT.tmp"
    try:
        staging.mkdir()
        if with_vectors and previous is not None and (previous / "chroma").is_dir() and _manifest_only(root):
            shutil.copytree(previous / "chroma", staging / "chroma", copy_function=os.link)
            (staging / VECTORS).write_text(vectors_of(previous))
        elif with_vectors:
            source = store_path / "chroma"
            shutil.copytree(source, staging / "chroma", ignore=shutil.ignore_patterns("chroma.sqlite3*"))
            _compact_copy(source / "chroma.sqlite3", staging / "chroma" / "chroma.sqlite3")
        _compact_copy(store_path / "manifest.sqlite", staging / "manifest.sqlite")
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
    (root / UNPUBLISHED).unlink(missing_ok=True)
    for old in _generations(root):
        if old != generation:
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
        # Renamed first: a reader that opens the lock from now on finds nothing, where a half-removed folder
        # would give it a fresh lock file of its own and a partial copy.
        doomed = generation.with_name(f".removing-{generation.name}")
        try:
            generation.rename(doomed)
        except OSError:
            doomed = generation
        shutil.rmtree(doomed, ignore_errors=True)
    finally:
        os.close(fd)  # a reader waiting for the lock then finds the generation gone and takes the newest


def _generations(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if p.name.split("-")[0].isdigit()]


def _number(generation: Path) -> int:
    return int(generation.name.split("-")[0])


def _manifest_only(root: Path) -> bool:
    try:
        return (root / UNPUBLISHED).read_text() == MANIFEST_ONLY
    except FileNotFoundError:
        return False


def _compact_copy(source: Path, target: Path) -> None:
    """A transactionally consistent copy of a live SQLite database without its free pages, in rollback-journal
    mode (Chroma's own `chroma utils vacuum` runs VACUUM on its database, so its tables survive it)."""
    for path, sql, args in ((source, "VACUUM INTO ?", (str(target),)), (target, "PRAGMA journal_mode=DELETE", ())):
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute(sql, args)
