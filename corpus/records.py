"""The data model every layer shares: what a connector yields and what the store keeps.

Plain frozen dataclasses; pydantic stays at the edges (config, MCP schemas, JSON output).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class Citation:
    """What a person clicks to check a hit: a path with #page/#heading, a permalink, a #t= time."""

    uri: str
    label: str


@dataclass(frozen=True)
class Locator:
    """Where a span sits inside its document."""

    page: int | None = None
    headings: tuple[str, ...] = ()
    start: float | None = None  # seconds into a recording, or epoch seconds of a message
    end: float | None = None


@dataclass(frozen=True)
class Block:
    """The smallest unit a connector emits: a paragraph, a list item, a message, a speaker turn."""

    text: str
    locator: Locator = Locator()
    citation: Citation | None = None  # None: the document's own citation applies
    people: tuple[str, ...] = ()


@dataclass(frozen=True)
class Item:
    """A source item as listed cheaply, before it is parsed.

    ``stamp`` changes whenever the item may have changed (size + mtime for a file);
    the connector's ``digest`` tells whether it really did.
    """

    native_id: str
    stamp: str
    path: Path | None = None


@dataclass(frozen=True)
class Document:
    """One unit a person would cite: a file, a Slack thread, a meeting."""

    id: str
    source: str
    kind: str
    native_id: str
    title: str
    citation: Citation
    blocks: tuple[Block, ...]
    digest: str
    created: datetime | None = None
    updated: datetime | None = None
    date_source: str | None = None  # where ``updated`` came from: "front matter", "git", "metadata", "mtime" …
    authors: tuple[str, ...] = ()
    access: tuple[str, ...] = ()
    context: str = ""  # channel or meeting name, shown in every chunk's header


@dataclass(frozen=True)
class Chunk:
    """A span of one document, sized for the embedding model, with what filters and citations need."""

    id: str
    doc_id: str
    ordinal: int
    text: str
    header: str
    locator: Locator
    citation: Citation
    people: tuple[str, ...] = field(default_factory=tuple)
    context: str = ""  # a sentence situating the span in its document, written by Claude when enabled
    questions: str = ""  # questions the span answers, one a line, written by Claude when enabled

    @property
    def embed_text(self) -> str:
        """The text that is embedded: the context header, Claude's context, the span."""
        return "\n".join(part for part in (self.header, self.context, self.text) if part)

    @property
    def index_text(self) -> str:
        """The text that is keyword-indexed: what is embedded, and the questions the span answers (no model reads
        them, so they cost the chunk none of the room the model has)."""
        return "\n".join(part for part in (self.embed_text, self.questions) if part)


def document_id(source: str, native_id: str) -> str:
    """Stable id from the source name and the item's native id, so re-ingest replaces, not duplicates."""
    return "d" + hashlib.sha1(f"{source}\0{native_id}".encode()).hexdigest()[:16]


def chunk_id(doc_id: str, ordinal: int) -> str:
    return f"{doc_id}:{ordinal}"


def epoch(value: datetime | None) -> float | None:
    """Seconds since 1970 for filters; a date without a zone (front matter) is taken as UTC."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
