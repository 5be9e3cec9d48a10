"""``kind = "docs"``: a folder of files (Markdown, PDF, Office, HTML, e-mail, EPUB, CSV …)."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from html import unescape
from pathlib import Path
from typing import Literal

from connectors import converters, dates, links, markdown
from connectors.base import ConnectorContext, Skipped, file_digest, walk_files
from connectors.html_text import visible_text, with_links
from connectors.limits import check_size, check_zip_text, read_file, too_large
from connectors.text import decode, paragraphs
from corpus.config import IngestSettings, SourceSettings
from corpus.errors import ItemError
from corpus.records import Block, Citation, Document, Item, Locator, document_id
from corpus.urls import file_uri

log = logging.getLogger(__name__)

MARKDOWN = {".md", ".markdown", ".mdx"}
PLAIN = {".txt", ".text", ".log"}
PDF = {".pdf"}
HTML = {".html", ".htm", ".xhtml"}
# Read by unstructured's local partitioners (no hosted API, no OCR).
UNSTRUCTURED = {
    ".html", ".htm", ".xhtml", ".docx", ".doc", ".pptx", ".ppt", ".xlsx", ".xls", ".eml", ".msg",
    ".rtf", ".odt", ".epub", ".csv", ".tsv", ".rst", ".org", ".xml",
}
SUPPORTED = MARKDOWN | PLAIN | PDF | UNSTRUCTURED
ZIPPED = {".docx", ".pptx", ".xlsx", ".odt", ".epub"}  # measured by their unpacked text parts, not on disk
_SKIPPED_CATEGORIES = {"PageBreak", "Header", "Footer", "PageNumber", "Image", "FigureCaption"}


class Settings(SourceSettings):
    kind: Literal["docs"]
    include: tuple[str, ...] = ()  # globs relative to path; empty: every supported file
    exclude: tuple[str, ...] = ()
    follow_external_links: bool = False  # read symbolic links that resolve outside path


def connector(settings: Settings, context: ConnectorContext | None = None) -> DocsConnector:
    return DocsConnector(settings, context)


class DocsConnector:
    def __init__(self, settings: Settings, context: ConnectorContext | None = None):
        self.settings = settings
        self.ingest = (context or ConnectorContext()).ingest
        self.cap = self.ingest.max_text_bytes
        self.git = dates.GitDates(settings.path)

    def items(self) -> Iterator[Item]:
        s = self.settings
        tools = converters.tools_for(self.ingest)
        for item in walk_files(s.path, s.include, s.exclude, SUPPORTED, s.follow_external_links):
            mark = tools.get(item.path.suffix.lower()) if item.path is not None else None
            yield replace(item, stamp=item.stamp + mark) if mark and not isinstance(item, Skipped) else item

    def digest(self, item: Item) -> str:
        return file_digest(item.path)

    def load(self, item: Item) -> Document:
        path = item.path
        suffix = path.suffix.lower()
        try:
            size = path.stat().st_size
            if size == 0:
                raise ItemError("empty file")
            if suffix in ZIPPED:
                check_zip_text(path, self.cap)
            elif suffix not in PDF:  # a PDF's size says little about its text: its pages are measured instead
                check_size(size, self.cap)
            if suffix in MARKDOWN:
                title, blocks, meta = _markdown(path, self.cap)
            elif suffix in PDF:
                title, blocks, meta = _pdf(path, self.cap, self.ingest)
            elif suffix in PLAIN:
                title, blocks, meta = None, [Block(p) for p in paragraphs(decode(read_file(path, self.cap)))], {}
            else:
                title, blocks, meta = _unstructured(path, self.cap, self.ingest)
        except ItemError:
            raise
        except Exception as exc:  # a parser's own error about a broken file: report it, go on
            raise ItemError(_reason(exc)) from exc
        if not any(b.text.strip() for b in blocks):
            raise ItemError("no text found (empty, whitespace-only or image-only)")
        return self._document(item, title, blocks, meta)

    def _document(self, item: Item, title: str | None, blocks: list[Block], meta: dict) -> Document:
        path = item.path
        uri = file_uri(path, item.native_id, self.settings.url)
        label = f"{self.settings.name}/{item.native_id}"
        cited = tuple(Block(b.text, b.locator, _citation(uri, path.suffix.lower(), label, b.locator), b.people)
                      for b in blocks)
        created, updated, date_source = self._dates(path, meta)
        return Document(
            id=document_id(self.settings.name, item.native_id),
            source=self.settings.name,
            kind="docs",
            native_id=item.native_id,
            title=(title or _title_from_name(path)).strip(),
            citation=Citation(uri=uri, label=label),
            blocks=cited,
            digest=self.digest(item),
            created=created,
            updated=updated,
            date_source=date_source,
            authors=meta.get("authors", ()),
            access=self.settings.access,
        )

    def _dates(self, path: Path, meta: dict) -> tuple[datetime | None, datetime, str]:
        """(created, updated, where updated came from), the surest first: front matter, the last commit,
        the format's own properties, the mtime (which a copy resets)."""
        created, updated = meta.get("created"), meta.get("updated")
        if updated is not None and meta.get("date_source") == dates.FRONT_MATTER:
            return created, updated, dates.FRONT_MATTER
        if updated is None:
            file_created, updated = dates.file_metadata(path)
            created = created or file_created
        committed = self.git.date(path)
        if committed is not None:
            return created, committed, dates.GIT
        if updated is not None:
            return created, updated, dates.METADATA
        return created, dates.mtime(path), dates.MTIME


def _markdown(path: Path, cap: int) -> tuple[str | None, list[Block], dict]:
    doc = markdown.parse(decode(read_file(path, cap)))
    meta = {
        "created": markdown.meta_date(doc.meta, "date", "created"),
        "updated": markdown.meta_date(doc.meta, "updated", "last_updated", "last_modified", "lastmod", "modified",
                                      "last_modified_at", "date"),
        "authors": markdown.meta_people(doc.meta, "authors", "author", "owner", "owners"),
    }
    meta["date_source"] = dates.FRONT_MATTER if meta["updated"] else None
    blocks = [Block(b.text, Locator(headings=_drop_title(b.headings, doc.title))) for b in doc.blocks]
    return doc.title, blocks, {k: v for k, v in meta.items() if v}


def _pdf(path: Path, cap: int, ingest: IngestSettings) -> tuple[str | None, list[Block], dict]:
    """Text per page with pypdfium2 (unstructured's PDF path needs a CUDA torch here)."""
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        raise ItemError(_pdf_reason(exc)) from None
    try:
        blocks: list[Block] = []
        total = 0
        for number in range(len(pdf)):
            page = pdf[number]
            text = links.pdf_page_text(pdf, page)
            total += len(text)
            if total > cap:
                raise too_large(None, cap)
            blocks.extend(Block(p, Locator(page=number + 1)) for p in paragraphs(text.replace("\x00", "")))
        info = pdf.get_metadata_dict()
        title = (info.get("Title") or "").strip() or None
    finally:
        pdf.close()
    if not blocks:  # scanned: Tesseract reads the page images, when it may
        blocks = [Block(p, Locator(page=n)) for n, text in converters.ocr_pdf(path, ingest) for p in paragraphs(text)]
    created = dates.pdf_date(info.get("CreationDate"))
    return title, blocks, {"created": created, "updated": dates.pdf_date(info.get("ModDate")) or created}


def _pdf_reason(exc: Exception) -> str:
    text = str(exc).lower()
    if "password" in text:
        return "password-protected PDF"
    if "format" in text or "data" in text:
        return f"corrupt or not a PDF ({exc})"
    return f"cannot open PDF ({exc})"


def _unstructured(path: Path, cap: int, ingest: IngestSettings) -> tuple[str | None, list[Block], dict]:
    from unstructured.partition.auto import partition

    if path.suffix.lower() in converters.LEGACY:
        with converters.modern_copy(path, ingest) as modern:
            check_zip_text(modern, cap)
            return _unstructured(modern, cap, ingest)
    if path.suffix.lower() == ".eml" and _encrypted_mail(_head(path)):
        raise ItemError("encrypted e-mail (S/MIME or PGP): the body cannot be read")
    if path.suffix.lower() in HTML:
        # Our decoder, not unstructured's guess: it reads Windows-1252 pages as such.
        from unstructured.partition.html import partition_html

        source = with_links(decode(read_file(path, cap)))
        elements = partition_html(text=source)
    elif linked := links.office_with_links(path):  # None: no link to keep, the file is read as it is
        elements = partition(file=io.BytesIO(linked), metadata_filename=path.name, process_attachments=False)
    else:
        elements = partition(filename=str(path), process_attachments=False)
    blocks: list[Block] = []
    stack: list[tuple[int, str]] = []
    title: str | None = None
    pending_title: Block | None = None
    meta: dict = {}
    for el in elements:
        md = el.metadata
        if getattr(md, "subject", None) and not title:
            title = md.subject
        if getattr(md, "sent_from", None) and "authors" not in meta:
            meta["authors"] = tuple(_display_address(a) for a in md.sent_from)
        text = (el.text or "").strip()
        if el.category in _SKIPPED_CATEGORIES or not text:
            continue
        page = md.page_number
        linked = links.inline(text, zip(md.link_texts or (), md.link_urls or (), strict=False))
        if el.category == "Title":
            depth = md.category_depth or 0
            if pending_title is not None:
                blocks.append(pending_title)  # a heading with nothing under it is content in itself
            stack = [(d, t) for d, t in stack if d < depth] + [(depth, text)]
            title = title or text
            pending_title = Block(linked, Locator(page=page, headings=tuple(t for _, t in stack[:-1])))
            if linked != text:  # its links are kept under it; the heading stays a plain section path
                blocks.append(pending_title)
                pending_title = None
            continue
        pending_title = None
        if el.category == "Table" and getattr(md, "text_as_html", None):
            linked = _table_text(md.text_as_html) or linked
        blocks.append(Block(linked, Locator(page=page, headings=_drop_title(tuple(t for _, t in stack), title))))
    if pending_title is not None:
        blocks.append(pending_title)
    if not blocks and path.suffix.lower() in HTML:  # libxml2 drops whatever is nested past 255 elements
        blocks = [Block(p) for p in paragraphs(visible_text(source))]
    return title, blocks, meta


def _table_text(html: str) -> str:
    """Rows as ``a | b | c`` lines: keeps the table's shape for the reader and the embedder."""
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", html, re.S | re.I)
    lines = []
    for row in rows:
        raw_cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S | re.I)
        cells = [" ".join(unescape(re.sub(r"<[^>]+>", " ", c)).split()) for c in raw_cells]
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def _display_address(address: str) -> str:
    name = re.sub(r"\s*<[^>]*>\s*", "", address).strip().strip('"')
    return name or address


def _head(path: Path, size: int = 65536) -> bytes:
    with path.open("rb") as stream:
        return stream.read(size)


def _encrypted_mail(head: bytes) -> bool:
    head = head.lower()
    return b"multipart/encrypted" in head or b"application/pkcs7-mime" in head


def _drop_title(headings: tuple[str, ...], title: str | None) -> tuple[str, ...]:
    """The document's own title heading adds nothing to a section path."""
    return headings[1:] if headings and title and headings[0].strip() == title.strip() else headings


def _citation(uri: str, suffix: str, label: str, loc: Locator) -> Citation:
    if loc.page is not None and suffix in PDF:
        return Citation(f"{uri}#page={loc.page}", f"{label}, page {loc.page}")
    if loc.page is not None and suffix in (".pptx", ".ppt"):
        return Citation(uri, f"{label}, slide {loc.page}")
    if loc.headings:
        return Citation(f"{uri}#{_slug(loc.headings[-1])}", f"{label} § {' › '.join(loc.headings)}")
    return Citation(uri, label)


def _slug(heading: str) -> str:
    """GitHub-style heading anchor, which most Markdown renderers and static sites also use."""
    return re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", heading.lower()).strip())


def _title_from_name(path: Path) -> str:
    return re.sub(r"[-_]+", " ", path.stem).strip().capitalize() or path.name


def _reason(exc: Exception) -> str:
    """One line a person can act on, from whatever a parser raised."""
    name = type(exc).__name__
    text = " ".join(str(exc).split())
    if "password" in text.lower() or "encrypt" in text.lower():
        return f"password-protected or encrypted ({name})"
    if len(text) > 160:
        text = text[:157] + "..."
    return f"cannot parse: {name}: {text}" if text else f"cannot parse: {name}"
