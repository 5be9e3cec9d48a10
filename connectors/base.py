"""The one small interface every connector implements, and helpers for file-based sources."""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

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
    """

    workdir: Path | None = None
    note: Callable[[str], None] = _quiet


def walk_files(root: Path, include: Sequence[str], exclude: Sequence[str]) -> Iterator[Item]:
    """Files under ``root`` matching the globs, in a stable order, stamped with size and mtime."""
    if root.is_file():
        candidates = [root]
        base = root.parent
    else:
        candidates = sorted(p for p in root.rglob("*") if p.is_file())
        base = root
    for path in candidates:
        rel = path.relative_to(base).as_posix()
        if any(part.startswith(".") for part in Path(rel).parts):
            continue
        if include and not any(_match(rel, g) for g in include):
            continue
        if any(_match(rel, g) for g in exclude):
            continue
        stat = path.stat()
        yield Item(native_id=rel, stamp=f"{stat.st_size}:{stat.st_mtime_ns}", path=path)


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
