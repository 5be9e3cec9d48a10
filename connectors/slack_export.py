"""Read a Slack workspace export, zipped or unpacked, without trusting the zip.

A zip is never extracted: members are read in memory, names with an absolute path or ``..`` are
refused, and the declared member count and unpacked size are checked before any member is read,
so a zip bomb is an error message, not a full disk. Each member read is bounded by the text cap,
from its declared size and again by reading at most cap + 1 bytes.
"""

from __future__ import annotations

import json
import threading
import zipfile
import zlib
from collections import defaultdict
from pathlib import Path, PurePosixPath

from connectors.limits import check_size, read_capped, read_file
from corpus.errors import ConfigError, ItemError

REQUIRED = ("channels.json", "users.json")


class SlackExport:
    """The export's files by their path inside it (``general/2016-03-01.json``)."""

    def __init__(self, path: Path, max_unpacked_mb: int, max_members: int, max_text_bytes: int):
        self.path = path
        self.cap = max_text_bytes
        self.unsafe: list[tuple[str, str]] = []  # (name, CRC:size) of zip members refused for their path
        self._zip: zipfile.ZipFile | None = None
        self._lock = threading.Lock()  # a ZipFile is not safe to read from two threads at once
        if path.is_dir():
            self._prefix = ""
            names = [p.relative_to(path).as_posix() for p in path.rglob("*.json") if p.is_file()]
        elif zipfile.is_zipfile(path):
            names = self._open_zip(max_unpacked_mb, max_members)
        else:
            raise ConfigError(f"{path}: not a Slack export (expected a folder or a .zip with {' and '.join(REQUIRED)})")
        self._folders: dict[str, list[str]] = defaultdict(list)
        for name in names:
            parent, _, leaf = name.rpartition("/")
            if parent and "/" not in parent and leaf.endswith(".json"):
                self._folders[parent].append(name)
        self._top = {name for name in names if "/" not in name}
        for required in REQUIRED:
            if required not in self._top:
                raise ConfigError(f"{path}: not a Slack export: {required} is missing")

    def _open_zip(self, max_unpacked_mb: int, max_members: int) -> list[str]:
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ConfigError(f"{self.path}: cannot open zip: {exc}") from None
        infos = self._zip.infolist()
        if len(infos) > max_members:
            raise ConfigError(f"{self.path}: refused: the zip has {len(infos)} members, more than "
                              f"max_members = {max_members}")
        unpacked = sum(info.file_size for info in infos)
        if unpacked > max_unpacked_mb * 2**20:
            raise ConfigError(f"{self.path}: refused: the zip would unpack to {unpacked / 2**20:,.0f} MB, more than "
                              f"max_unpacked_mb = {max_unpacked_mb} (a zip bomb, or raise the limit)")
        names = []
        for info in infos:
            if info.is_dir():
                continue
            if not _safe(info.filename):
                self.unsafe.append((info.filename, f"{info.CRC:08x}:{info.file_size}"))
                continue
            names.append(info.filename)
        # Exports zipped with their folder keep it as a prefix: strip it when channels.json sits one level down.
        tops = {n.split("/", 1)[0] for n in names}
        self._prefix = ""
        if "channels.json" not in names and len(tops) == 1 and f"{next(iter(tops))}/channels.json" in names:
            self._prefix = next(iter(tops)) + "/"
        return [n[len(self._prefix):] for n in names if n.startswith(self._prefix)]

    def has(self, name: str) -> bool:
        return name in self._top

    def folders(self) -> set[str]:
        return set(self._folders)

    def day_files(self, folder: str) -> list[str]:
        return sorted(self._folders.get(folder, ()))

    def read(self, name: str) -> bytes:
        """A member's bytes; a corrupt, vanished or too large member is an ItemError naming why."""
        try:
            if self._zip is None:
                return read_file(self.path / name, self.cap)
            with self._lock:
                info = self._zip.getinfo(self._prefix + name)
                check_size(info.file_size, self.cap)
                with self._zip.open(info) as stream:
                    return read_capped(stream, self.cap)
        except (OSError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise ItemError(f"cannot read: {' '.join(str(exc).split())[:160]}") from None

    def stamp(self, name: str) -> str:
        """Changes when the member does, without reading it."""
        if self._zip is None:
            stat = (self.path / name).stat()
            return f"{stat.st_size}:{stat.st_mtime_ns}"
        info = self._zip.getinfo(self._prefix + name)
        return f"{info.CRC:08x}:{info.file_size}"

    def read_json(self, name: str) -> object:
        """A JSON file that the export cannot do without: any problem is a ConfigError."""
        try:
            return json.loads(self.read(name))
        except (ItemError, ValueError) as exc:
            raise ConfigError(f"{self.path}: cannot read {name}: {exc}") from None


def _safe(name: str) -> bool:
    """No absolute path, no drive letter, no ``..``: nothing that could point outside the export."""
    path = PurePosixPath(name.replace("\\", "/"))
    return bool(path.parts) and not path.is_absolute() and ".." not in path.parts and ":" not in path.parts[0]
