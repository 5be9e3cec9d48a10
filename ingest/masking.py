"""Secrets masked in everything a connector yields, once, before anything is chunked, stored or sent.

A document's every text goes through the rules in redact.py: title, context, authors, block texts,
heading paths, people, citation labels and URIs. A secret can come back changed elsewhere in the same
document (a file name turned into a lower-cased title, a heading into its URL anchor), so when the
rules find any, every text is masked again with those values matched loosely.

Native ids (relative paths) are stored in the manifest, so an item whose id holds a secret is listed
under a stand-in (redact.stored_id) that is the same on every run: incremental ingest still matches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import quote, unquote

from connectors.base import Connector, Skipped
from corpus.records import Block, Citation, Document, Item
from corpus.redact import echoes, find, mask, merge, redact, scrub, stored_id

_URI_SAFE = "/:#?&=@+,;!$'()*~%"


def mask_document(doc: Document) -> tuple[Document, int]:
    """The document with every secret masked, and how many distinct secret values it held."""
    first = _Masker([])
    first.document(doc)
    if not first.found:
        return doc, 0
    again = _Masker(sorted(set(first.found), key=len, reverse=True))
    return again.document(doc), len(set(first.found))


class _Masker:
    def __init__(self, secrets: list[str]):
        self.secrets = secrets  # values found on the first pass, matched loosely on the second
        self.found: list[str] = []
        self._done: dict[str, str] = {}  # headings, labels and URIs repeat on every block

    def document(self, doc: Document) -> Document:
        self.found += scrub(doc.native_id)[1]
        return replace(
            doc, native_id=stored_id(doc.native_id), title=self.text(doc.title), citation=self.citation(doc.citation),
            context=self.text(doc.context), authors=tuple(self.short(a) for a in doc.authors),
            blocks=tuple(self.block(b) for b in doc.blocks),
        )

    def block(self, block: Block) -> Block:
        headings = tuple(self.short(h) for h in block.locator.headings)
        return replace(block, text=self.text(block.text), locator=replace(block.locator, headings=headings),
                       citation=block.citation and self.citation(block.citation),
                       people=tuple(self.short(p) for p in block.people))

    def citation(self, citation: Citation) -> Citation:
        return Citation(self.uri(citation.uri), self.short(citation.label))

    def text(self, text: str) -> str:
        spans = merge(find(text) + echoes(text, self.secrets)) if self.secrets else find(text)
        self.found += [text[s.start:s.end] for s in spans]
        return mask(text, spans)

    def short(self, text: str) -> str:
        """A text that repeats across blocks (a heading, a label, a name), masked once."""
        if text not in self._done:
            self._done[text] = self.text(text)
        return self._done[text]

    def uri(self, uri: str) -> str:
        """Masked in its readable form (a file name is percent-encoded in a file:// URI), then encoded back."""
        if uri not in self._done:
            plain = unquote(uri)
            masked = self.text(plain)
            self._done[uri] = uri if masked == plain else quote(masked, safe=_URI_SAFE)
        return self._done[uri]


class MaskedIds:
    """A connector whose items carry the ids the manifest stores (and a skipped item a masked reason: it may
    name a link's target); it hands the original item to the connector."""

    def __init__(self, connector: Connector):
        self.connector = connector
        self._originals: dict[str, Item] = {}

    def items(self) -> Iterator[Item]:
        for item in self.connector.items():
            changes = {}
            stand_in = stored_id(item.native_id)
            if stand_in != item.native_id:
                self._originals[stand_in] = item
                changes["native_id"] = stand_in
            if isinstance(item, Skipped) and redact(item.reason) != item.reason:
                changes["reason"] = redact(item.reason)
            yield replace(item, **changes) if changes else item

    def digest(self, item: Item) -> str:
        return self.connector.digest(self._originals.get(item.native_id, item))

    def load(self, item: Item) -> Document:
        return self.connector.load(self._originals.get(item.native_id, item))

    def __getattr__(self, name: str):
        return getattr(self.connector, name)
