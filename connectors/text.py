"""Decoding bytes of unknown encoding, and splitting plain text into paragraphs."""

from __future__ import annotations

import codecs
import re

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode(data: bytes) -> str:
    """Best reading of text bytes: BOM, UTF-8, BOM-less UTF-16, then statistical detection."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if len(data) >= 4 and data.count(0) > len(data) // 4:
        # UTF-16 without a BOM: ASCII text leaves every other byte zero.
        even_zeros = data[0::2].count(0)
        return data.decode("utf-16-be" if even_zeros > len(data) // 4 else "utf-16-le", errors="replace")
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is not None and best.encoding not in ("ascii", "utf_8"):
        return str(best)
    return data.decode("cp1252", errors="replace")


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs with their inner line breaks folded."""
    parts = re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n"))
    return [" ".join(line.strip() for line in p.splitlines() if line.strip()) for p in parts if p.strip()]
