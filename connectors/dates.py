"""When a file was really last changed, and where that date came from.

A copied folder gives every file the day of the copy as its mtime, so ``after``/``before`` filters would
mean nothing. Connectors ask, in order, what the file says of itself (front matter), the last git commit
that touched it, what its format records (PDF, Office, e-mail), and only then the mtime.
"""

from __future__ import annotations

import os
import re
import subprocess
import zipfile
from datetime import UTC, datetime, timedelta, timezone
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime
from functools import cached_property
from pathlib import Path
from xml.etree import ElementTree

# What each hit's ``date_source`` says.
FRONT_MATTER = "front matter"
GIT = "git"
METADATA = "metadata"
TRANSCRIPT = "transcript"
FILE_NAME = "file name"
SLACK = "slack"
MTIME = "mtime"

GIT_SECONDS = 120  # one `git log` over a large history; past this the source is dated without git
_OOXML = {".docx", ".pptx", ".xlsx"}
_ODF = {".odt", ".ods", ".odp"}
_CORE_NS = {"dcterms": "http://purl.org/dc/terms/", "dc": "http://purl.org/dc/elements/1.1/",
            "meta": "urn:oasis:names:tc:opendocument:xmlns:meta:1.0"}
_MAX_META_BYTES = 1 << 20  # a core.xml or meta.xml is a few hundred bytes
_PDF_DATE = re.compile(r"(?:D:)?(\d{4})(\d\d)?(\d\d)?(\d\d)?(\d\d)?(\d\d)?(?:([Zz+-])(\d\d)?'?(\d\d)?'?)?")


def mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)


class GitDates:
    """Last-commit dates of the files under a folder, from one `git log` run the first time one is asked for.

    Outside a work tree, without git on PATH, or when git fails, every answer is None: the next source of a
    date applies. A file with uncommitted changes has no git date either: it changed after its last commit.
    """

    def __init__(self, folder: Path):
        self.folder = folder if folder.is_dir() else folder.parent

    def date(self, path: Path) -> datetime | None:
        return self._dates.get(os.path.realpath(path))

    @cached_property
    def _dates(self) -> dict[str, datetime]:
        top = _git(self.folder, "rev-parse", "--show-toplevel")
        if top is None:
            return {}
        root = os.path.realpath(top.rstrip("\n"))
        log = _git(self.folder, "log", "--name-only", "--no-renames", "-z", "--format=%x00%ct", "--", ".")
        changed = _git(self.folder, "status", "--porcelain", "-z", "--untracked-files=no", "--", ".")
        if log is None or changed is None:
            return {}
        dates: dict[str, datetime] = {}
        when: datetime | None = None
        header = False
        for token in log.split("\0"):  # "\0<ct>\0\n<name>\0<name>\0" per commit, newest first
            if not token:
                header = True
            elif header:
                when, header = datetime.fromtimestamp(int(token), tz=UTC), False
            elif when is not None:
                dates.setdefault(os.path.join(root, token.removeprefix("\n")), when)
        entries = iter(changed.split("\0"))
        for entry in entries:  # "XY name"; a rename's or copy's old name follows as an entry of its own
            dates.pop(os.path.join(root, entry[3:]), None)
            if "R" in entry[:2] or "C" in entry[:2]:
                next(entries, None)
        return dates


def _git(folder: Path, *args: str) -> str | None:
    """Git's output, or None when git is missing, fails, or takes too long."""
    try:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, timeout=GIT_SECONDS,
                              env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})  # status must not write the index
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.decode("utf-8", "surrogateescape") if done.returncode == 0 else None


def file_metadata(path: Path) -> tuple[datetime | None, datetime | None]:
    """(created, modified) as an Office/OpenDocument file's properties or an e-mail's Date header say."""
    suffix = path.suffix.lower()
    try:
        if suffix in _OOXML:
            return _zipped_xml(path, "docProps/core.xml", "dcterms:created", "dcterms:modified")
        if suffix in _ODF:
            return _zipped_xml(path, "meta.xml", ".//meta:creation-date", ".//dc:date")
        if suffix == ".eml":
            with path.open("rb") as stream:
                sent = BytesHeaderParser().parsebytes(stream.read(65536)).get("Date")
            when = parsedate_to_datetime(str(sent)) if sent else None
            return when, when
    except (OSError, ValueError, TypeError, KeyError, zipfile.BadZipFile, ElementTree.ParseError):
        pass  # unreadable properties: the file's date comes from elsewhere
    return None, None


def _zipped_xml(path: Path, member: str, created: str, modified: str) -> tuple[datetime | None, datetime | None]:
    with zipfile.ZipFile(path) as archive:
        if archive.getinfo(member).file_size > _MAX_META_BYTES:
            return None, None
        root = ElementTree.fromstring(archive.read(member))
    return _iso(root.findtext(created, namespaces=_CORE_NS)), _iso(root.findtext(modified, namespaces=_CORE_NS))


def _iso(value: str | None) -> datetime | None:
    if not value or not value.strip():
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        return None


def pdf_date(value: str | None) -> datetime | None:
    """A PDF date string (``D:20230314101500+01'00'``) as a datetime; None when absent or malformed."""
    found = _PDF_DATE.fullmatch(value.strip()) if value else None
    if not found:
        return None
    year, month, day, hour, minute, second, sign, tz_hours, tz_minutes = found.groups()
    zone = None
    if sign in ("+", "-"):
        offset = timedelta(hours=int(tz_hours or 0), minutes=int(tz_minutes or 0))
        zone = timezone(offset if sign == "+" else -offset)
    elif sign:
        zone = UTC
    try:
        return datetime(int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
                        int(second or 0), tzinfo=zone)
    except ValueError:
        return None
