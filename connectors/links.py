"""Hyperlinks kept in stored text as ``label (url)``, so whoever reads a passage can tell where a link goes.

One way of writing a link for every format: Markdown, HTML, Office files and e-mail, PDF link annotations
and Slack markup. Office files and PDFs keep their link targets outside the text, so the URL is put back
right after the words it covers; a URL the text already shows is not written twice.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path

_NOWHERE = ("#", "javascript:")  # a jump within the page or a script: nothing a reader can open


def labelled(label: str, url: str) -> str:
    """``label (url)``; the URL alone when the label is empty or is the URL; the label alone when the link
    leads nowhere outside the page."""
    label, target = " ".join(label.split()), _target(url)
    if not target:
        return label
    if not label or label in (target, _bare(target)):
        return target
    return label + after(label, url)


def after(label: str, url: str) -> str:
    """What follows ``label`` in the text: `` (url)``, or nothing when the label already shows the URL."""
    target = _target(url)
    return "" if not target or shows(label, url) else f" ({target})"


def shows(text: str, url: str) -> bool:
    """Whether ``text`` already shows the URL, with or without its scheme (not merely inside a word)."""
    target = " ".join(_target(url).split())
    needle = _bare(target).rstrip("/") or target
    text = " ".join(text.split())
    at = text.find(needle) if needle else -1
    while at >= 0:  # str.find, not a regex: a page has thousands of distinct URLs to compile
        before, end = text[at - 1:at], at + len(needle)
        if not _word_char(before, "_.-") and not _word_char(text[end:end + 1], "_-"):
            return True
        at = text.find(needle, at + 1)
    return False


def _word_char(char: str, extra: str) -> bool:
    return bool(char) and (char.isalnum() or char in extra)


def _target(url: str) -> str:
    url = url.strip()
    return "" if url.lower().startswith(_NOWHERE) else url.removeprefix("mailto:")


def _bare(url: str) -> str:
    return url.split("://", 1)[-1]


def inline(text: str, links: Iterable[tuple[str, str]]) -> str:
    """``text`` with each (label, url) link's URL put after its label, labels found in order. A label not
    found (the parser reflowed the text) is added at the end with its URL, so the link is not lost."""
    parts, at, missing = [], 0, []
    for label, url in links:
        addition = after(label, url)
        if not addition or shows(text, url):
            continue
        found = _find(text, label, at)
        if found is None:
            missing.append(labelled(label, url))
            continue
        parts += [text[at:found], addition]
        at = found
    return "".join(parts) + text[at:] + "".join(" " + m for m in missing)


def _find(text: str, label: str, start: int) -> int | None:
    """End of the first whole-word occurrence of ``label`` (any whitespace between its words) from ``start``."""
    words = label.split()
    if not words:
        return None
    pattern = r"\s+".join(map(re.escape, words))
    pattern = (r"(?<!\w)" if words[0][0].isalnum() else "") + pattern + (r"(?!\w)" if words[-1][-1].isalnum() else "")
    match = re.compile(pattern).search(text, start)
    return match.end() if match else None


# Office files: the link's URL written into the file's own text, so every partitioner sees it in place.

_HYPERLINK_REL = b"relationships/hyperlink"
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


def office_with_links(path: Path) -> bytes | None:
    """A copy of a .docx/.pptx/.xlsx with each external hyperlink's URL written after its text; None when
    the file has no such link (or is no Office package), so it is read as it is."""
    suffix = path.suffix.lower()
    if suffix not in (".docx", ".pptx", ".xlsx") or not _has_hyperlinks(path):
        return None
    if suffix == ".xlsx":
        return _xlsx(path)
    if suffix == ".docx":
        import docx

        package = docx.Document(str(path))
    else:
        import pptx

        package = pptx.Presentation(str(path))
    rewrite = _docx_part if suffix == ".docx" else _pptx_part
    for part in package.part.package.iter_parts():
        if hasattr(part, "_element"):
            rewrite(part)
    out = io.BytesIO()
    package.save(out)
    return out.getvalue()


def _has_hyperlinks(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith(".rels") and _HYPERLINK_REL in archive.read(name) for name in archive.namelist())


def _external(part, rid: str | None) -> str:
    rel = part.rels.get(rid) if rid else None
    return rel.target_ref if rel is not None and rel.is_external else ""


def _docx_part(part) -> None:
    for link in part._element.iter(f"{_W}hyperlink"):
        texts = list(link.iter(f"{_W}t"))
        _append(texts, after("".join(t.text or "" for t in texts), _external(part, link.get(_R_ID))))


def _pptx_part(part) -> None:
    runs = [click.getparent().getparent() for click in part._element.iter(f"{_A}hlinkClick")]
    for run in (r for r in runs if r.tag == f"{_A}r"):
        rid = _link_id(run)
        following = run.getnext()
        if following is not None and _link_id(following) == rid:
            continue  # one link over several runs (a change of style): its URL goes after the last
        texts, previous = [], run
        while previous is not None and _link_id(previous) == rid:
            texts[:0] = previous.iter(f"{_A}t")
            previous = previous.getprevious()
        _append(texts, after("".join(t.text or "" for t in texts), _external(part, rid)))


def _link_id(run) -> str | None:
    click = run.find(f"{_A}rPr/{_A}hlinkClick")
    return click.get(_R_ID) if click is not None else None


def _append(texts: list, addition: str) -> None:
    """``addition`` at the end of a link's own text: a run added after it can land past a page break."""
    if addition and "".join(t.text or "" for t in texts).strip():
        texts[-1].text = (texts[-1].text or "") + addition
        texts[-1].set("{http://www.w3.org/XML/1998/namespace}space", "preserve")


def _xlsx(path: Path) -> bytes:
    import openpyxl

    # Cached values, not formulas: what the sheet shows is what the copy keeps.
    book = openpyxl.load_workbook(path, data_only=True)
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                link = cell.hyperlink
                if link is not None and link.target and cell.value is not None:
                    cell.value = labelled(str(cell.value), link.target)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# PDF: link annotations are rectangles over the page; their URL goes after the last word they cover.

def pdf_page_text(pdf, page) -> str:
    """The text of a pypdfium2 page with each web link's URL after the words its rectangle covers."""
    textpage = page.get_textpage()
    text = textpage.get_text_range()
    links = _uri_links(pdf, page)
    if not links:
        return text
    import pypdfium2.raw as raw

    centres = [_centre(textpage.get_charbox(i)) for i in range(textpage.count_chars())]
    placed: dict[str, int] = {}  # URL: text position after its words (the last, when it spans two lines)
    alone: list[str] = []  # links over an image or blank space: their URL stands on its own
    for url, (left, bottom, right, top) in links:
        if not after(textpage.get_text_bounded(left, bottom, right, top), url) or shows(text, url):
            continue
        covered = [i for i, (x, y) in enumerate(centres) if left <= x <= right and bottom <= y <= top]
        if not covered:
            alone.append(_target(url))
            continue
        at = raw.FPDFText_GetTextIndexFromCharIndex(textpage.raw, max(covered)) + 1
        while at < len(text) and text[at].isalnum():  # a rectangle a little short of the word's end
            at += 1
        placed.pop(url, None)
        placed[url] = at
    parts, previous = [], 0
    for url, at in sorted(placed.items(), key=lambda pair: pair[1]):
        parts += [text[previous:at], f" ({_target(url)})"]
        previous = at
    return "".join(parts) + text[previous:] + "".join(f"\n\n{url}" for url in dict.fromkeys(alone))


def _centre(box: tuple[float, float, float, float]) -> tuple[float, float]:
    left, bottom, right, top = box
    return (left + right) / 2, (bottom + top) / 2


def _uri_links(pdf, page) -> list[tuple[str, tuple[float, float, float, float]]]:
    """(URL, rectangle) of each link annotation that opens a web address."""
    import ctypes

    import pypdfium2.raw as raw

    found = []
    position, link = ctypes.c_int(0), raw.FPDF_LINK()
    while raw.FPDFLink_Enumerate(page.raw, ctypes.byref(position), ctypes.byref(link)):
        action = raw.FPDFLink_GetAction(link)
        if not action or raw.FPDFAction_GetType(action) != raw.PDFACTION_URI:
            continue
        size = raw.FPDFAction_GetURIPath(pdf.raw, action, None, 0)
        buffer = ctypes.create_string_buffer(size)
        raw.FPDFAction_GetURIPath(pdf.raw, action, buffer, size)
        rect = raw.FS_RECTF()
        url = buffer.value.decode("utf-8", "replace").strip()
        if url and raw.FPDFLink_GetAnnotRect(link, ctypes.byref(rect)):
            found.append((url, (rect.left, rect.bottom, rect.right, rect.top)))
    return found
