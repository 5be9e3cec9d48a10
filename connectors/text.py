"""Decoding bytes of unknown encoding, and splitting plain text into paragraphs."""

from __future__ import annotations

import codecs
import re

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

_LATIN = {
    "ascii", "cp1250", "cp1252", "cp1254", "cp1257", "latin_1", "iso8859_2", "iso8859_9", "iso8859_10",
    "iso8859_13", "iso8859_14", "iso8859_15", "iso8859_16", "mac_roman", "mac_latin2", "cp850", "cp437",
}


def decode(data: bytes) -> str:
    """Best reading of text bytes: BOM, UTF-8, BOM-less UTF-16, then statistical detection."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding)
    if len(data) >= 4 and data.count(0) > len(data) // 4:
        # UTF-16 without a BOM: ASCII text leaves every other byte zero (and NUL is valid UTF-8).
        even_zeros = data[0::2].count(0)
        return data.decode("utf-16-be" if even_zeros > len(data) // 4 else "utf-16-le", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None or best.encoding in _LATIN:
        # Among Latin code pages a short text is ambiguous; Windows-1252 is by far the likeliest.
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            pass
    return str(best) if best is not None else data.decode("cp1252", errors="replace")


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs with their inner line breaks folded."""
    parts = re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n"))
    return [" ".join(line.strip() for line in p.splitlines() if line.strip()) for p in parts if p.strip()]
