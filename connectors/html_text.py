"""The visible text of an HTML page, with no limit on nesting; and the page with its links and list
numbers written into its text.

unstructured parses HTML with libxml2, which drops everything nested deeper than 255 elements; such a
page then looks empty. The standard library's tokenizer keeps no tree, so depth costs it nothing.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from connectors.links import after

_INVISIBLE = {"script", "style", "template", "head", "noscript"}
_BLOCKS = {"p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "table",
           "blockquote", "pre", "ul", "ol", "dd", "dt", "hr", "header", "footer", "main", "aside", "nav"}
_CELLS = {"td", "th"}
_ROWS = {"tr", "table"}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0  # depth inside invisible elements
        self.cells = 0  # cells begun in the current table row
        self.in_cell = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in _INVISIBLE:
            self.hidden += 1
        elif tag in _CELLS:
            self.parts.append(" | " if self.cells else "")
            self.cells += 1
            self.in_cell = True
        else:
            self._break(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _INVISIBLE:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _CELLS:
            self.in_cell = False
        else:
            self._break(tag)

    def _break(self, tag: str) -> None:
        """A table row is one line of ``a | b`` cells; a block inside a cell does not break its row."""
        if tag in _ROWS:
            self.cells, self.in_cell = 0, False
        if tag == "br":
            self.parts.append(" " if self.in_cell else "\n")
        elif tag in _BLOCKS or tag in _ROWS:
            self.parts.append(" " if self.in_cell and tag not in _ROWS else "\n\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    """Text a browser would show, blocks separated by blank lines, a table row's cells by ``|``."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)


class _Links(HTMLParser):
    """Where link targets and list numbers go in the source, as (offset, escaped text) insertions."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", source)]  # getpos() counts lines
        self.inserts: list[tuple[int, str]] = []
        self.link: tuple[str, list[str]] | None = None  # the open link's href and the text of its label
        self.lists: list[int | None] = []  # each open list's next number; None for a bulleted list
        self.headings = 0  # a heading is a section path and an anchor: its links are left to the caller

    def position(self) -> int:
        line, column = self.getpos()
        return self.line_starts[line - 1] + column

    def handle_starttag(self, tag: str, attrs: list) -> None:
        values = dict(attrs)
        if tag == "a":
            self.link = (values.get("href") or "", [])
        elif tag in ("ol", "ul"):
            self.lists.append(_number(values.get("start"), 1) if tag == "ol" else None)
        elif tag == "li" and self.lists and self.lists[-1] is not None:
            number = _number(values.get("value"), self.lists[-1])
            self.lists[-1] = number + 1
            self.inserts.append((self.position() + len(self.get_starttag_text() or ""), f"{number}. "))
        elif tag in _HEADINGS:
            self.headings += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self.link is not None:
            href, label = self.link
            self.link = None
            addition = after("".join(label), href) if "".join(label).strip() else ""
            if addition and not self.headings:
                end = self.source.find(">", self.position()) + 1 or len(self.source)
                self.inserts.append((end, html.escape(addition, quote=False)))
        elif tag in ("ol", "ul") and self.lists:
            self.lists.pop()
        elif tag in _HEADINGS:
            self.headings = max(0, self.headings - 1)

    def handle_data(self, data: str) -> None:
        if self.link is not None:
            self.link[1].append(data)


def _number(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def with_links(source: str) -> str:
    """The page with each link's URL written after its text (``label (url)``) and each item of a numbered
    list numbered, so any parser of the page keeps them; the markup itself is left as it was."""
    parser = _Links(source)
    parser.feed(source)
    parser.close()
    parts, previous = [], 0
    for at, text in sorted(parser.inserts, key=lambda pair: pair[0]):
        parts += [source[previous:at], text]
        previous = at
    return "".join(parts) + source[previous:]
