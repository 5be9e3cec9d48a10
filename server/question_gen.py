"""`corpus questions`: the questions a newcomer would ask, written as a file `corpus check` reads.

From the corpus, per source, at most ``per_source`` questions:
- offline: FAQ-shaped text first (a heading that is a question, a line in a document or a message in a Slack
  thread that asks one), then a document's headings ("What does the handbook say about Travel cards?"), taken
  round-robin over the documents with most text first. A document's question carries the first sentence
  under its heading as the expected answer, so `corpus check` sees when that answer moves or goes.
- with Claude: per document, the questions a newcomer would ask that it answers, each with its answer copied
  from the document; the document is sent as a cached prompt prefix. An answer not found in the document
  drops its question; a malformed reply falls back to the offline questions for that document, and the file
  says so.
From the open gap themes (``server.gaps``): their example questions, so the check shows when a theme is closed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from corpus.claude import Claude
from server.gaps import Gaps
from server.questions import Question
from server.search import Searcher, published

GAP_QUESTIONS = 3  # example questions per open gap theme
PER_DOCUMENT = 3  # questions Claude writes per document
DOCUMENT_CHARS = 60_000  # of a document sent to Claude (about 15k tokens)
BATCH = 500  # chunk rows read at once
_SENTENCE = re.compile(r"(.+?[.!?])(\s|$)")
_ASKED = re.compile(r"^[\s>*#_-]*(?:q:|question:)?\s*(.{12,200}\?)\s*[*_]*$", re.I)
_MARKUP = re.compile(r"[*_`#>]|\[([^\]]*)\]\([^)]*\)")
_FAQ = re.compile(r"\bfaqs?\b|frequently asked|questions", re.I)
_SPEAKER = re.compile(r"^\s*(?:\[[^\]]{1,20}\]\s*)?[^:@]{1,60}?(?:\s\([^)]{1,30}\))?:\s+")  # "Name (when): "
# a question that stands alone: opens with a question word, six words or more, addresses no one by name
_QUESTION = re.compile(r"(?=(?:\S+\s+){5})(?:how|what|where|who|when|why|which|is|are|does|do|can|could|should|"
                       r"will|may)\b[^@]*$", re.I)


@dataclass
class Document:
    doc_id: str
    source: str
    kind: str
    title: str
    sections: list[tuple[str, str]]  # (heading path, text) in order

    @property
    def text(self) -> str:
        return "\n\n".join(f"## {heading}\n{body}" if heading else body for heading, body in self.sections)


@dataclass
class Generated:
    questions: list[Question]
    mode: str
    notes: list[str] = field(default_factory=list)  # what fell back and why


def generate(searcher: Searcher, claude: Claude, per_source: int, gaps: Gaps | None = None) -> Generated:
    questions: list[Question] = []
    notes: list[str] = []
    for source in searcher.config.sources:
        documents = sorted(read_documents(searcher, source.name), key=lambda d: (-len(d.text), d.title))
        if claude.available:
            questions += _with_claude(claude, source.name, documents, per_source, notes)
        else:
            questions += _offline(documents, per_source)
    for theme in (gaps.themes if gaps else []):
        if not theme.resolved:
            questions += [Question(q, section=f"Asked but not answered: {theme.name}")
                          for q in theme.questions[:GAP_QUESTIONS]]
    return Generated(questions, claude.mode, notes)


def read_documents(searcher: Searcher, source: str) -> list[Document]:
    """A source's documents as stored: their chunks' text in order, grouped under their headings."""
    with searcher.replica.reading() as snapshot:
        snapshot = published(snapshot)
        ids = [chunk_id for (chunk_id,) in snapshot.db.execute(
            "SELECT chunk_id FROM chunk_meta WHERE source = ? ORDER BY doc_id, rowid", (source,))]
        documents: dict[str, Document] = {}
        for start in range(0, len(ids), BATCH):
            rows = snapshot.vectors.rows(ids[start:start + BATCH])
            for chunk_id in sorted(rows, key=lambda i: (i.partition(":")[0], int(i.partition(":")[2] or 0))):
                text, meta = rows[chunk_id]
                doc = documents.setdefault(meta["doc_id"], Document(meta["doc_id"], source, meta.get("kind", ""),
                                                                    meta.get("title", ""), []))
                heading = meta.get("section") or ""
                if doc.sections and doc.sections[-1][0] == heading:
                    doc.sections[-1] = (heading, doc.sections[-1][1] + "\n" + text)
                else:
                    doc.sections.append((heading, text))
    return list(documents.values())


def _offline(documents: list[Document], limit: int) -> list[Question]:
    """FAQ-shaped questions first, then headings, one document at a time in turn."""
    chosen: list[Question] = []
    seen: set[str] = set()
    for candidates in (_faq, _headings):
        for question in _round_robin([candidates(doc) for doc in documents]):
            if len(chosen) >= limit:
                return chosen
            key = question.text.lower()
            if key not in seen:
                seen.add(key)
                chosen.append(question)
    return chosen


def _round_robin(streams: list[Iterator[Question]]) -> Iterator[Question]:
    streams = list(streams)
    while streams:
        for stream in list(streams):
            question = next(stream, None)
            if question is None:
                streams.remove(stream)
            else:
                yield question


def _faq(doc: Document) -> Iterator[Question]:
    """Headings that are questions; in a FAQ section of a document, or in a conversation, lines that ask one (a
    document's with the answer that follows)."""
    for heading, body in doc.sections:
        last = heading.rsplit("›", 1)[-1].strip()
        if doc.kind == "docs" and last.endswith("?"):
            yield Question(_clean(last), section=_where(doc), source=doc.source, answer=first_sentence(body))
        if doc.kind == "docs" and not _FAQ.search(heading):
            continue
        lines = body.splitlines()
        for n, line in enumerate(lines):
            asked = _ASKED.match(_SPEAKER.sub("", line) if doc.kind != "docs" else line)
            question = _clean(asked.group(1)) if asked else ""
            if not _QUESTION.match(question) or question.rstrip("?").lower() == last.rstrip("?").lower():
                continue
            answer = first_sentence(" ".join(lines[n + 1:n + 3])) if doc.kind == "docs" else None
            yield Question(question[0].upper() + question[1:], section=_where(doc), source=doc.source, answer=answer)


def _headings(doc: Document) -> Iterator[Question]:
    """A docs heading as the question a reader would bring to it."""
    if doc.kind != "docs":
        return
    for heading, body in doc.sections:
        last = _clean(heading.rsplit("›", 1)[-1]) or _clean(doc.title)
        answer = first_sentence(body)
        if last and not last.endswith("?") and answer:
            yield Question(f"What does the {doc.source} say about {last}?", section=_where(doc), source=doc.source,
                           answer=answer)


def _where(doc: Document) -> str:
    return f"{doc.source}: {_clean(doc.title) or doc.doc_id}"


def _clean(text: str) -> str:
    return " ".join(_MARKUP.sub(lambda m: m.group(1) or "", text).split())


def first_sentence(text: str, words: int = 25) -> str | None:
    """The first sentence of prose (five words or more), cut to ``words`` words; None when there is none."""
    for line in text.splitlines():
        line = _clean(line.lstrip("-*+ "))
        found = _SENTENCE.match(line)
        sentence = found.group(1) if found else line
        if len(sentence.split()) >= 5 and not sentence.startswith(("|", "{", "<")):
            return " ".join(sentence.split()[:words])
    return None


PROMPT = """The document above is from the "{source}" source of an organisation's knowledge base.
Write up to {count} questions a new employee would ask that this document answers, in their words (not the
document's headings). For each, copy the shortest passage of the document that answers it, word for word.
Reply with one JSON object and nothing else:
{{"questions": [{{"question": "...", "answer": "words copied exactly from the document"}}]}}"""


def _with_claude(claude: Claude, source: str, documents: list[Document], limit: int,
                 notes: list[str]) -> list[Question]:
    """Claude's questions, document by document, until ``limit``; a document whose reply does not fit gets the
    offline questions instead, and a note says so."""
    chosen: list[Question] = []
    for doc in documents:
        if len(chosen) >= limit:
            break
        count = min(PER_DOCUMENT, limit - len(chosen))
        reply = claude.ask_json(PROMPT.format(source=source, count=count),
                                cached=f"<document title=\"{doc.title}\">\n{doc.text[:DOCUMENT_CHARS]}\n</document>",
                                max_tokens=150 + 120 * count)
        found = _checked(reply, doc)[:count] if reply is not None else None
        if not found:
            why = "Claude's reply did not fit (malformed or failed)" if found is None else \
                "none of Claude's answers were found in the document"
            notes.append(f"{source}: {_clean(doc.title) or doc.doc_id}: {why}; offline questions instead")
            found = _offline([doc], count)
        chosen += found
    return chosen


def _checked(reply: dict, doc: Document) -> list[Question] | None:
    """Claude's questions whose answer really is in the document; None when the reply has no question list."""
    items = reply.get("questions")
    if not isinstance(items, list):
        return None
    text = " ".join(doc.text.split()).lower()
    kept = []
    for item in items:
        if not isinstance(item, dict):
            continue
        question, answer = " ".join(str(item.get("question") or "").split()), " ".join(
            str(item.get("answer") or "").split())
        if question.endswith("?") and len(answer) >= 3 and answer.lower() in text:
            kept.append(Question(question, section=_where(doc), source=doc.source, answer=answer))
    return kept


def to_markdown(generated: Generated) -> str:
    """The question file, in the Markdown `corpus check` reads (server.questions): sections, items, sub-items."""
    lines = [f"# Onboarding questions by `corpus questions`, {datetime.now().strftime('%Y-%m-%d %H:%M')}", "",
             f"Mode: {generated.mode}. Run `corpus check` on this file; edit or delete questions freely.", ""]
    lines += [f"Note: {note}." for note in generated.notes]
    section = None
    for q in generated.questions:
        if q.section != section:
            section = q.section
            lines += ["", f"## {section}", ""]
        lines.append(f"- {q.text}")
        lines += [f"  - source: {q.source}"] if q.source else []
        lines += [f"  - answer: {q.answer}"] if q.answer else []
    return "\n".join(lines) + "\n"


def write_questions(generated: Generated, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_markdown(generated), encoding="utf-8")
