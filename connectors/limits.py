"""The text cap ([ingest] max_text_mb), checked before an item is read whenever its size can be known.

A size is measured on disk or from a zip's declared sizes first; reads that follow are bounded too
(at most cap + 1 bytes), so a file that grows or a zip that lies costs no more than the cap.
"""

from __future__ import annotations

import math
import struct
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

from corpus.errors import ItemError

_BLOCK = 1 << 20
# Zip members that hold a document's text (OOXML parts, ODT content, EPUB pages); media are not text.
_TEXT_MEMBERS = (".xml", ".rels", ".xhtml", ".html", ".htm", ".opf", ".ncx", ".txt")


def too_large(size: int | None, cap: int) -> ItemError:
    """The one line an item past the cap gets; ``size`` None when only "more than the cap" is known."""
    what = f"{_mb(size)} MB > {_mb(cap)} MB cap" if size is not None else f"more than the {_mb(cap)} MB cap"
    return ItemError(f"text too large: {what}; raise [ingest] max_text_mb to read it")


def check_size(size: int, cap: int) -> None:
    if size > cap:
        raise too_large(size, cap)


def read_capped(stream: BinaryIO, cap: int) -> bytes:
    """All of ``stream``, reading at most ``cap`` + 1 bytes whatever its size claims to be."""
    data = stream.read(cap + 1)
    if len(data) > cap:
        raise too_large(None, cap)
    return data


def read_file(path: Path, cap: int) -> bytes:
    """A file's bytes, refused from its size on disk before anything is read."""
    check_size(path.stat().st_size, cap)
    with path.open("rb") as stream:
        return read_capped(stream, cap)


def check_zip_text(path: Path, cap: int) -> None:
    """A zip-based document (DOCX, PPTX, XLSX, ODT, EPUB) whose text parts unpack past the cap is refused.

    The declared sizes are checked first; then the parts are inflated from their compressed bytes and
    counted (not kept), stopping one byte past the cap, since a zip can declare less than it holds.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            members = [i for i in zf.infolist() if i.filename.lower().endswith(_TEXT_MEMBERS)]
            check_size(sum(i.file_size for i in members), cap)
            with path.open("rb") as raw:
                total = 0
                for info in members:
                    total += _inflated_size(raw, info, cap - total)
                    if total > cap:
                        raise too_large(None, cap)
    except (zipfile.BadZipFile, zlib.error, struct.error):
        return  # a broken zip (or not one: a legacy format): the parser says what is wrong


def _inflated_size(raw: BinaryIO, info: zipfile.ZipInfo, limit: int) -> int:
    """What a member inflates to, counted from its compressed data up to ``limit`` + 1 bytes."""
    raw.seek(info.header_offset)
    header = raw.read(30)
    if header[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile("bad local header")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    raw.seek(info.header_offset + 30 + name_length + extra_length)
    if info.compress_type != zipfile.ZIP_DEFLATED:
        return info.compress_size if info.compress_type == zipfile.ZIP_STORED else info.file_size
    inflate = zlib.decompressobj(-zlib.MAX_WBITS)
    total, left = 0, info.compress_size
    pending = b""
    while total <= limit and (pending or left > 0):
        if not pending:
            pending = raw.read(min(_BLOCK, left))
            if not pending:
                break
            left -= len(pending)
        total += len(inflate.decompress(pending, min(_BLOCK, limit + 1 - total)))
        pending = inflate.unconsumed_tail
    return total


def _mb(size: int) -> str:
    """Megabytes rounded up to one decimal, so a size just past the cap never reads as equal to it."""
    return f"{math.ceil(size / 2**20 * 10) / 10:g}"
