"""Cut a document into chunks along its structure, measured in the embedding model's own tokenizer.

A chunk never holds more word pieces (context header included) than the model reads, so nothing
is silently truncated at embedding time. Blocks of one section are packed together; a section too
small on its own joins its neighbour; a block too long is split at sentence boundaries, with a
little overlap so a fact cut in two is still found whole in one of the chunks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Protocol

from corpus.records import Block, Chunk, Document, Locator, chunk_id


class TokenMeasure(Protocol):
    """The embedding model's tokenizer, as the chunker needs it."""

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def split_tokens(self, text: str, limit: int) -> list[str]: ...

_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n+")
# Longer blocks are cut (after a sentence end, else at whitespace) before the tokenizer sees them:
# tokenizing a 10 MB line whole takes gigabytes. Far more than a chunk holds, so normal text never notices.
MAX_SEGMENT_CHARS = 20_000
_COUNT_BATCH = 64  # texts per tokenizer call: bounds its memory to a few MB
_BREAK = re.compile(r"\s+")
_PHRASE_END = re.compile(r"(?<=[),|])\s+")  # after a link's "(url)", a comma, a table cell
_WORD_GAP = re.compile(r"\s+(?!\()")  # between words; a link's "(url)" stays with the word before it


@dataclass(frozen=True)
class _Piece:
    text: str
    tokens: int
    block: Block
    section: tuple
    overlap: bool = False  # repeated from the previous chunk for context


def header_for(doc: Document, locator: Locator) -> str:
    """Title, section path and context, embedded with the chunk so a bare paragraph keeps its meaning."""
    parts = [doc.title]
    if locator.headings:
        parts.append(" › ".join(locator.headings))
    if doc.context:
        parts.append(doc.context)
    if locator.page is not None:
        parts.append(f"page {locator.page}")
    return " | ".join(p for p in parts if p)


class Chunker:
    def __init__(self, measure: TokenMeasure, max_tokens: int, min_tokens: int = 48, overlap_tokens: int = 32):
        if max_tokens < 32:
            raise ValueError("max_tokens must be at least 32")
        self.measure = measure
        self.count = measure.count_tokens
        self.max_tokens = max_tokens
        self.min_tokens = min_tokens
        self.overlap_tokens = overlap_tokens

    def chunk(self, doc: Document) -> list[Chunk]:
        blocks = [b for b in doc.blocks if b.text.strip()]  # secrets were masked when it was loaded
        if not blocks:
            return []
        # A header longer than a segment is dropped below anyway: measuring its start is enough.
        headers = {self._section(b): header_for(doc, b.locator)[:MAX_SEGMENT_CHARS] for b in blocks}
        header_tokens = {section: n for section, _, n in self._counted(headers.items())}
        # Each section's body budget leaves room for its header, but never below a workable minimum.
        budget = {s: max(self.max_tokens - t - 1, self.max_tokens // 2) for s, t in header_tokens.items()}
        pieces = self._pieces(blocks, budget)
        groups = self._pack(pieces, budget)
        chunks = []
        for group in groups:
            first = group[0].block
            locator = _span(group)
            header = headers[group[0].section]
            if header_tokens[group[0].section] + sum(p.tokens for p in group) + 1 > self.max_tokens:
                header = ""  # a header longer than half the window is dropped rather than truncating text
            chunks.append(Chunk(
                id=chunk_id(doc.id, len(chunks)),
                doc_id=doc.id,
                ordinal=len(chunks),
                text="\n".join(p.text for p in group),
                header=header,
                locator=locator,
                citation=first.citation or doc.citation,
                people=tuple(dict.fromkeys(person for p in group for person in p.block.people)),
            ))
        return chunks

    @staticmethod
    def _section(block: Block) -> tuple:
        return (block.locator.headings, block.locator.page)

    def _pieces(self, blocks: list[Block], budget: dict) -> list[_Piece]:
        pieces: list[_Piece] = []
        for block, text, tokens in self._counted((b, s) for b in blocks for s in segments(b.text)):
            section = self._section(block)
            if tokens <= budget[section]:
                pieces.append(_Piece(text, tokens, block, section))
                continue
            sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
            for sentence, n in zip(sentences, self.count(sentences), strict=True):
                if n <= budget[section]:
                    pieces.append(_Piece(sentence, n, block, section))
                else:
                    pieces.extend(_Piece(t, c, block, section) for t, c in self._hard_split(sentence, budget[section]))
        return pieces

    def _counted(self, pairs: Iterable[tuple[object, str]]) -> Iterator[tuple[object, str, int]]:
        """Each (key, text) with the text's token count, measured a bounded batch at a time."""
        pairs = iter(pairs)
        while batch := list(islice(pairs, _COUNT_BATCH)):
            counts = self.count([text for _, text in batch])
            yield from ((key, text, n) for (key, text), n in zip(batch, counts, strict=True))

    def _hard_split(self, text: str, limit: int) -> list[tuple[str, int]]:
        """A run-on 'sentence' (a table row, a log line) cut after a phrase (a link, a cell), else between
        words, so a link stays whole; only a word longer than the limit is cut at word-piece boundaries."""
        units: list[tuple[str, int]] = []
        for _, phrase, n in self._counted((None, p) for p in _PHRASE_END.split(text) if p):
            if n <= limit:
                units.append((phrase, n))
            else:
                units += [(w, c) for _, w, c in self._counted((None, w) for w in _WORD_GAP.split(phrase) if w)]
        parts: list[str] = []
        words: list[str] = []
        used = 0
        for unit, n in units:
            if words and used + n > limit:
                parts.append(" ".join(words))
                words, used = [], 0
            if n > limit:
                parts += self.measure.split_tokens(unit, limit)
            else:
                words.append(unit)
                used += n
        parts.append(" ".join(words))
        pieces: list[tuple[str, int]] = []
        for _, part, n in self._counted((None, p) for p in parts if p.strip()):
            # Word counts add up in a word-piece tokenizer; a part that still measures over is cut by pieces.
            pieces += [(part, n)] if n <= limit else self._by_pieces(part, limit)
        return pieces

    def _by_pieces(self, text: str, limit: int) -> list[tuple[str, int]]:
        parts = [p for p in self.measure.split_tokens(text, limit) if p.strip()]
        return list(zip(parts, self.count(parts), strict=True))

    def _pack(self, pieces: list[_Piece], budget: dict) -> list[list[_Piece]]:
        groups: list[list[_Piece]] = []
        current: list[_Piece] = []
        used = 0
        for piece in pieces:
            limit = budget[current[0].section] if current else budget[piece.section]
            new_section = bool(current) and piece.section != current[0].section
            fits = used + piece.tokens <= limit
            if current and (not fits or (new_section and used >= self.min_tokens)):
                groups.append(current)
                carried = [] if new_section else self._overlap(current, piece, budget[piece.section])
                current, used = carried, sum(p.tokens for p in carried)
            current.append(piece)
            used += piece.tokens
        if current:
            groups.append(current)
        return [g for g in groups if any(not p.overlap for p in g)]

    def _overlap(self, previous: list[_Piece], nxt: _Piece, limit: int) -> list[_Piece]:
        """Trailing sentences of the same block repeated at the start of the next chunk."""
        carried: list[_Piece] = []
        total = 0
        for piece in reversed(previous):
            if piece.block is not nxt.block or total + piece.tokens > self.overlap_tokens:
                break
            carried.insert(0, _Piece(piece.text, piece.tokens, piece.block, piece.section, overlap=True))
            total += piece.tokens
        return carried if total + nxt.tokens <= limit else []


def segments(text: str, limit: int = MAX_SEGMENT_CHARS) -> Iterator[str]:
    """``text`` in spans of at most ``limit`` characters, cut after the last sentence end in the second
    half of each window, else after its last whitespace, else at the limit."""
    start = 0
    while len(text) - start > limit:
        window = text[start:start + limit]
        cut = _last_end(_SENTENCE_END, window, limit // 2) or _last_end(_BREAK, window, limit // 2) or limit
        yield window[:cut]
        start += cut
    yield text[start:] if start else text


def _last_end(pattern: re.Pattern, window: str, after: int) -> int:
    """End of the last match of ``pattern`` in ``window`` past ``after``; 0 when none."""
    end = 0
    for match in pattern.finditer(window, after):
        end = match.end()
    return end


def _span(group: list[_Piece]) -> Locator:
    first = group[0].block.locator
    starts = [p.block.locator.start for p in group if p.block.locator.start is not None]
    ends = [p.block.locator.end for p in group if p.block.locator.end is not None]
    return Locator(
        page=first.page,
        headings=first.headings,
        start=min(starts) if starts else None,
        end=max(ends) if ends else None,
    )
