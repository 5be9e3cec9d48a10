"""Contextual chunks: Claude writes a sentence or two situating each chunk in its document.

This is Anthropic's contextual retrieval: a bare paragraph ("the limit is 30 days") is found far
more often once it says what it belongs to. The sentence is embedded and keyword-indexed with the
chunk; the document goes in a cached prompt prefix so its many chunks pay for it about once. Each
sentence is cached by chunk, outside the store, so re-ingest and even `--full` pay nothing for
chunks already seen. Without Claude, the deterministic header (title, section, context) stays.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from corpus.claude import Claude
from corpus.records import Chunk, Document
from corpus.redact import scrub
from ingest.chunker import TokenMeasure

PROMPT_VERSION = "1"
RESERVE_TOKENS = 64  # word pieces the chunker leaves free for the sentence
DOCUMENT_CHARS = 60_000  # about 15k tokens: longer documents are cut for the prompt
SYSTEM = ("You write short context for passages of an organisation's internal documents, to improve search. "
          "The document is given below. Reply with the context only.")
PROMPT = ("<chunk>\n{chunk}\n</chunk>\nIn one or two sentences, situate this chunk within the overall document "
          "above for search retrieval: what it is about and where it sits. Answer only with the sentences.")


@dataclass
class ContextStats:
    chunks: int = 0
    cached: int = 0
    written: int = 0
    missing: int = 0  # Claude gave nothing for these (unavailable, failed); their header stands alone
    redacted: int = 0  # secret values masked in Claude's replies before they were kept

    def as_dict(self) -> dict:
        return {"chunks": self.chunks, "cached": self.cached, "written": self.written, "missing": self.missing,
                "redacted": self.redacted}


class Contextualizer:
    def __init__(self, claude: Claude, cache_path: Path, measure: TokenMeasure, max_tokens: int):
        self.claude = claude
        self.measure = measure
        self.max_tokens = max_tokens
        self.stats = ContextStats()
        self._lock = threading.Lock()
        self.db = sqlite3.connect(cache_path, check_same_thread=False)
        self.db.execute("CREATE TABLE IF NOT EXISTS contexts (key TEXT PRIMARY KEY, context TEXT NOT NULL)")

    def apply(self, doc: Document, chunks: list[Chunk]) -> list[Chunk]:
        """The chunks with their context sentences: from the cache, else from Claude, else none.

        ``doc`` and ``chunks`` come masked from the loader, so Claude never sees a secret; a reply that
        quotes one anyway (or invents one) is masked before it is cached or embedded.
        """
        keys = [self._key(doc, chunk) for chunk in chunks]
        with self._lock:
            known = dict(self.db.execute(
                f"SELECT key, context FROM contexts WHERE key IN ({','.join('?' * len(keys))})", keys))
        todo = [(key, chunk) for key, chunk in zip(keys, chunks, strict=True) if key not in known]
        if todo and self.claude.available:
            document = "<document>\n" + "\n\n".join(b.text for b in doc.blocks)[:DOCUMENT_CHARS] + "\n</document>"
            replies = self.claude.map(
                lambda pair: self.claude.ask(PROMPT.format(chunk=pair[1].text), system=SYSTEM, cached=document,
                                             max_tokens=120), todo)
            fresh = {key: self._masked(reply) for (key, _), reply in zip(todo, replies, strict=True)
                     if reply and reply.strip()}
            with self._lock, self.db:
                self.db.executemany("INSERT OR REPLACE INTO contexts (key, context) VALUES (?, ?)", fresh.items())
            known.update(fresh)
            self.stats.written += len(fresh)
        self.stats.chunks += len(chunks)
        self.stats.cached += len(chunks) - len(todo)
        self.stats.missing += sum(1 for key in keys if key not in known)
        return [self._with(chunk, known[key]) if key in known else chunk
                for key, chunk in zip(keys, chunks, strict=True)]

    def _masked(self, reply: str) -> str:
        text, found = scrub(" ".join(reply.split()))
        self.stats.redacted += len(found)
        return text

    def _with(self, chunk: Chunk, context: str) -> Chunk:
        """The sentence, cut to the room the chunk leaves, so the model never truncates the span itself."""
        room = self.max_tokens - self.measure.count_tokens([chunk.embed_text])[0] - 1
        parts = self.measure.split_tokens(context, room) if room >= 8 else []
        return replace(chunk, context=parts[0].strip()) if parts else chunk

    def _key(self, doc: Document, chunk: Chunk) -> str:
        material = "\0".join((PROMPT_VERSION, self.claude.settings.model, doc.title, chunk.text))
        return hashlib.sha256(material.encode()).hexdigest()

    def close(self) -> None:
        self.db.close()
