"""Contextual chunks and likely questions: Claude situates each chunk in its document, and says what it answers.

This is Anthropic's contextual retrieval: a bare paragraph ("the limit is 30 days") is found far
more often once it says what it belongs to. The sentence is embedded and keyword-indexed with the
chunk. Likely questions are document expansion by query prediction (doc2query): the questions a
newcomer would put to the chunk, in their words ("my bank wants to confirm where I work"), are
keyword-indexed with it, so a question worded unlike the text still finds it; they are not embedded,
so they take none of the room the model reads. One call per chunk writes both; the document goes in a
cached prompt prefix so its many chunks pay for it about once. Each reply is cached by chunk, outside
the store, so re-ingest and even `--full` pay nothing for chunks already seen. Without Claude, the
deterministic header (title, section, context) stays.
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
QUESTIONS = 3  # likely questions kept per chunk
QUESTION_CHARS = 200
SYSTEM = ("You write short context for passages of an organisation's internal documents, to improve search. "
          "The document is given below. Reply with the context only.")
PROMPT = ("<chunk>\n{chunk}\n</chunk>\nIn one or two sentences, situate this chunk within the overall document "
          "above for search retrieval: what it is about and where it sits. Answer only with the sentences.")
ASK = (f"Write up to {QUESTIONS} questions that someone new to the organisation might ask, in their own words, "
       "and that this chunk answers, each on a line of its own starting with \"Q: \".")
PROMPTS = {  # (context, questions) -> the user turn
    (True, False): PROMPT,
    (True, True): PROMPT.replace(" Answer only with the sentences.", " Then, after the sentences: ") + ASK,
    (False, True): "<chunk>\n{chunk}\n</chunk>\n" + ASK + " Answer only with the questions.",
}


@dataclass
class ContextStats:
    chunks: int = 0
    cached: int = 0
    written: int = 0
    missing: int = 0  # Claude gave nothing for these (unavailable, failed); their header stands alone
    questioned: int = 0  # chunks with likely questions
    redacted: int = 0  # secret values masked in Claude's replies before they were kept

    def as_dict(self) -> dict:
        return {"chunks": self.chunks, "cached": self.cached, "written": self.written, "missing": self.missing,
                "redacted": self.redacted, "questioned": self.questioned}


class Contextualizer:
    def __init__(self, claude: Claude, cache_path: Path, measure: TokenMeasure, max_tokens: int, *,
                 context: bool = True, questions: bool = False):
        self.claude = claude
        self.measure = measure
        self.max_tokens = max_tokens
        self.wants = (context, questions)
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
            prompt, most = PROMPTS[self.wants], 120 * self.wants[0] + 100 * self.wants[1]
            replies = self.claude.map(
                lambda pair: self.claude.ask(prompt.format(chunk=pair[1].text), system=SYSTEM, cached=document,
                                             max_tokens=most), todo)
            fresh = {key: self._masked(reply) for (key, _), reply in zip(todo, replies, strict=True)
                     if reply and reply.strip()}
            with self._lock, self.db:
                self.db.executemany("INSERT OR REPLACE INTO contexts (key, context) VALUES (?, ?)", fresh.items())
            known.update(fresh)
            self.stats.written += len(fresh)
        self.stats.chunks += len(chunks)
        self.stats.cached += len(chunks) - len(todo)
        self.stats.missing += sum(1 for key in keys if key not in known)
        done = [self._with(chunk, known[key]) if key in known else chunk
                for key, chunk in zip(keys, chunks, strict=True)]
        self.stats.questioned += sum(1 for chunk in done if chunk.questions)
        return done

    def _masked(self, reply: str) -> str:
        lines = (" ".join(line.split()) for line in reply.splitlines())
        text, found = scrub("\n".join(line for line in lines if line))
        self.stats.redacted += len(found)
        return text

    def _with(self, chunk: Chunk, reply: str) -> Chunk:
        """The context sentence cut to the room the chunk leaves, so the model never truncates the span itself;
        the questions beside it."""
        context, questions = split_reply(reply)
        if self.wants[1] and questions:
            chunk = replace(chunk, questions="\n".join(questions))
        if not self.wants[0] or not context:
            return chunk
        room = self.max_tokens - self.measure.count_tokens([chunk.embed_text])[0] - 1
        parts = self.measure.split_tokens(context, room) if room >= 8 else []
        return replace(chunk, context=parts[0].strip()) if parts else chunk

    def _key(self, doc: Document, chunk: Chunk) -> str:
        asked = () if self.wants == (True, False) else ("context" * self.wants[0] + "+questions" * self.wants[1],)
        material = "\0".join((PROMPT_VERSION, self.claude.settings.model, doc.title, chunk.text, *asked))
        return hashlib.sha256(material.encode()).hexdigest()

    def close(self) -> None:
        self.db.close()


def split_reply(reply: str) -> tuple[str, list[str]]:
    """A reply's context sentences and its questions (the lines starting "Q:"), at most ``QUESTIONS``."""
    context, questions = [], []
    for line in reply.splitlines():
        if line[:2].upper() == "Q:":
            question = line[2:].strip()[:QUESTION_CHARS]
            if question and len(questions) < QUESTIONS:
                questions.append(question)
        else:
            context.append(line)
    return " ".join(context).strip(), questions
