"""The visible text of an HTML page, with no limit on nesting.

unstructured parses HTML with libxml2, which drops everything nested deeper than 255 elements; such a
page then looks empty. The standard library's tokenizer keeps no tree, so depth costs it nothing.
"""

from __future__ import annotations

from html.parser import HTMLParser

_INVISIBLE = {"script", "style", "template", "head", "noscript"}
_BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "table",
           "blockquote", "pre", "ul", "ol", "dd", "dt", "hr", "header", "footer", "main", "aside", "nav"}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0  # depth inside invisible elements

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in _INVISIBLE:
            self.hidden += 1
        elif tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _INVISIBLE:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    """Text a browser would show, blocks separated by blank lines."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)
