"""The one small interface every connector implements, and helpers for file-based sources."""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import os
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG
from typing import Protocol

from corpus.config import IngestSettings
from corpus.records import Document, Item


class Connector(Protocol):
    """Lists a source's items cheaply; reads one only when the manifest says it changed."""

    def items(self) -> Iterator[Item]:
        """Every item in the source, with a cheap change stamp. Must not parse content."""
        ...

    def digest(self, item: Item) -> str:
        """A content fingerprint, computed only when the stamp changed."""
        ...

    def load(self, item: Item) -> Document:
        """Parse the item. Raises ItemError with a one-line reason when it cannot."""
        ...


def _quiet(line: str) -> None:
    pass


@dataclass(frozen=True)
class ConnectorContext:
    """What a run offers a connector beyond its settings; most connectors ignore it.

    ``workdir`` is a folder of the store where a connector may keep work that must survive runs
    (the meetings connector's transcripts); None means no such folder (a connector opened on its own).
    ``note`` shows a progress line for work the item counts do not show (minutes of audio transcribed).
    ``ingest`` holds the bounds every source keeps (the text cap), from corpus.toml's ``[ingest]``.
    """

    workdir: Path | None = None
    note: Callable[[str], None] = _quiet
    ingest: IngestSettings = field(default_factory=IngestSettings)


@dataclass(frozen=True)
class Skipped(Item):
    """An item listed but not read: the run reports ``reason`` as its one line and goes on.

    ``keep`` is True when the cause may pass (a folder or file that cannot be read now): whatever was
    ingested from there stays. Otherwise (a link out of the source, a name that is not UTF-8) nothing is kept.
    """

    reason: str = ""
    keep: bool = False


def walk_files(root: Path, include: Sequence[str], exclude: Sequence[str], suffixes: Collection[str] = (),
               follow_external: bool = False) -> Iterator[Item]:
    """Files under ``root`` matching the globs (and ``suffixes``, when given), in a stable order, stamped with
    size and mtime; what cannot be read or named is a ``Skipped`` item, never an exception.

    Nothing outside ``root`` is read: a symbolic link resolving outside it is skipped unless ``follow_external``.
    Links to folders are not followed, so a link loop cannot make the walk run forever. Only a ``root`` that
    cannot be listed at all raises (OSError): the whole source fails.
    """
    if root.is_file():
        stat = root.stat()
        yield Item(native_id=root.name, stamp=f"{stat.st_size}:{stat.st_mtime_ns}", path=root)
        return
    walk = _Walk(Path(os.path.realpath(root)), include, exclude, {s.lower() for s in suffixes}, follow_external)
    yield from walk.folder("", _sorted_entries(root))


def _sorted_entries(folder: Path | str) -> list[os.DirEntry]:
    with os.scandir(folder) as entries:
        return sorted(entries, key=lambda e: e.name)


@dataclass(frozen=True)
class _Walk:
    boundary: Path  # the source folder, resolved: links must land inside it
    include: Sequence[str]
    exclude: Sequence[str]
    suffixes: set[str]
    follow_external: bool

    def folder(self, prefix: str, entries: list[os.DirEntry]) -> Iterator[Item]:
        for entry in entries:
            rel = prefix + entry.name
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                if not any(_match(rel, g) or _match(rel + "/", g) for g in self.exclude):  # "drafts" as "drafts/**"
                    yield from self.subfolder(Path(entry.path), rel)
            elif self.wanted(rel) and (item := self.file(entry, rel)) is not None:
                yield item

    def subfolder(self, path: Path, rel: str) -> Iterator[Item]:
        if not _utf8(rel):
            yield Skipped(_printable(rel), "", path, reason="folder name is not valid UTF-8; rename it to read it")
            return
        try:
            entries = _sorted_entries(path)
        except OSError as exc:
            yield Skipped(rel, "", path, reason=f"cannot list this folder: {exc.strerror}", keep=True)
            return
        yield from self.folder(rel + "/", entries)

    def wanted(self, rel: str) -> bool:
        if self.suffixes and os.path.splitext(rel)[1].lower() not in self.suffixes:
            return False
        if self.include and not any(_match(rel, g) for g in self.include):
            return False
        return not any(_match(rel, g) for g in self.exclude)

    def file(self, entry: os.DirEntry, rel: str) -> Item | None:
        path = Path(entry.path)
        if not _utf8(rel):
            return Skipped(_printable(rel), "", path, reason="file name is not valid UTF-8; rename it to read it")
        try:
            if entry.is_symlink() and not self.follow_external:
                target = Path(os.path.realpath(path))
                if not target.is_relative_to(self.boundary):
                    return Skipped(rel, "", path, reason=f"symbolic link to {target}, outside the source folder: "
                                   "not followed (set follow_external_links = true in the source to read it)")
            stat = entry.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None  # a broken link: nothing to read
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return None  # a link loop: nothing to read
            return Skipped(rel, "", path, reason=f"cannot read: {exc.strerror}", keep=True)
        if not S_ISREG(stat.st_mode):
            return None  # a link to a folder, a pipe, a device
        return Item(native_id=rel, stamp=f"{stat.st_size}:{stat.st_mtime_ns}", path=path)


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes in a file name arrive as lone surrogates
        return False
    return True


def _printable(name: str) -> str:
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _match(rel: str, glob: str) -> bool:
    # "**/*.md" should also match "a.md" at the top level, as in gitignore-style globs
    return fnmatch.fnmatch(rel, glob) or (glob.startswith("**/") and fnmatch.fnmatch(rel, glob[3:]))


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_atomically(path: Path, text: str) -> None:
    """``text`` into ``path`` through a temporary file and a rename, so a crash leaves the old file or the new
    one, never half of one (the transcript and speaker caches)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@dataclass
class AudioRuns:
    """What a costly step over recordings (transcription, diarization) did: the recordings it ran on and those
    its cache answered. Process-wide totals let tests and benchmarks check that unchanged audio costs nothing."""

    ran: int = 0
    cached: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, audio_seconds: float, wall_seconds: float) -> None:
        with self._lock:
            self.ran += 1
            self.audio_seconds += audio_seconds
            self.wall_seconds += wall_seconds

    def hit(self) -> None:
        with self._lock:
            self.cached += 1
