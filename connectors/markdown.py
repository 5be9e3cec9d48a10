"""Markdown to blocks with exact heading paths, front matter as metadata, template tags removed.

Parsed with markdown-it rather than unstructured: headings keep their real levels, code and tables
survive, and it is fast enough that parsing never slows embedding down. Links are written
``label (url)``, numbered lists keep their numbers, a table reads row by row.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import date, datetime

import yaml
from markdown_it import MarkdownIt

from connectors.html_text import visible_text, with_links
from connectors.links import labelled
from connectors.text import paragraphs

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)
# (opening, closing) of spans that are removed. Not lazy regexes (``{%.*?%}``): those rescan the rest of
# the text for every opening that is never closed, hours on a hostile file; _remove_spans stops there.
_LIQUID_COMMENT = (re.compile(r"{%-?\s*comment\s*-?%}"), re.compile(r"{%-?\s*endcomment\s*-?%}"))
_LIQUID_TAG = (re.compile(r"{%"), re.compile(r"%}"))
_LIQUID_OUTPUT = (re.compile(r"{{"), re.compile(r"}}"))
_HTML_COMMENT = (re.compile(r"<!--"), re.compile(r"-->"))
_LIQUID_QUOTED = re.compile(r"{%-?\s*(slack_channel|page)\s+[\"']([^\"']*)[\"'][^%]*-?%}")
_HTML_LINK = re.compile(r"<a(?=[\s>/])(?:[^>]*?\bhref\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+)))?", re.I)
_HTML_LINK_END = re.compile(r"</a\s*>", re.I)

_md = MarkdownIt("commonmark").enable("table")
_md.normalizeLink = lambda url: url  # a link's target as written: not percent-encoded


@dataclass(frozen=True)
class MarkdownBlock:
    text: str
    headings: tuple[str, ...]
    item: bool = False  # part of a list: consecutive items read as one block


@dataclass(frozen=True)
class MarkdownDoc:
    meta: dict
    title: str | None
    blocks: list[MarkdownBlock]


def parse(text: str) -> MarkdownDoc:
    meta, body = split_front_matter(text)
    body = strip_template_tags(body)
    blocks: list[MarkdownBlock] = []
    stack: list[tuple[int, str]] = []
    first_heading: str | None = None
    tokens = _md.parse(body)
    i = 0
    lists: list[int | None] = []  # each open list's next number; None for a bulleted list
    marker = ""  # "- " or "3. " until the first paragraph of a list item takes it
    while i < len(tokens):
        tok = tokens[i]
        if tok.type == "heading_open":
            level = int(tok.tag[1])
            title = _inline_text(tokens[i + 1], links=False)  # the section path and anchor: no URLs
            stack = [(lvl, t) for lvl, t in stack if lvl < level] + [(level, title)]
            first_heading = first_heading or title
            linked = _inline_text(tokens[i + 1])
            if linked != title:  # a link in a heading is kept under it
                blocks.append(MarkdownBlock(linked, tuple(t for _, t in stack)))
            i += 3
            continue
        headings = tuple(t for _, t in stack)
        if tok.type in ("bullet_list_open", "ordered_list_open"):
            lists.append(int(tok.attrGet("start") or 1) if tok.type == "ordered_list_open" else None)
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif tok.type == "list_item_open":
            marker = "- " if lists[-1] is None else f"{lists[-1]}. "
            if lists[-1] is not None:
                lists[-1] += 1
        elif tok.type == "inline":
            content = _inline_text(tok)
            if content:
                # A second paragraph of an item is indented under its first.
                prefix = "  " * (len(lists) - 1) + (marker or " " * 2) if lists else ""
                marker = ""
                blocks.append(MarkdownBlock(prefix + content, headings, item=bool(lists)))
        elif tok.type in ("fence", "code_block") and tok.content.strip():
            blocks.append(MarkdownBlock(tok.content.rstrip(), headings))
        elif tok.type == "html_block":
            content = "\n".join(paragraphs(visible_text(with_links(tok.content))))
            if content:
                blocks.append(MarkdownBlock(content, headings))
        elif tok.type == "table_open":
            i, table = _table(tokens, i)
            blocks.append(MarkdownBlock(table, headings))
            continue
        i += 1
    # Static-site generators render front matter as HTML, so "Logging in &amp; Networks" means "&".
    title = html.unescape(meta["title"]) if isinstance(meta.get("title"), str) else None
    redirect = meta.get("redirect_to")
    if not blocks and isinstance(redirect, str):
        # A moved page is still an answer to "where is X?": keep where it went.
        blocks.append(MarkdownBlock(f"{title or 'This page'} has moved to {redirect}", ()))
    return MarkdownDoc(meta=meta, title=title or first_heading, blocks=_merge_list_items(blocks))


def split_front_matter(text: str) -> tuple[dict, str]:
    """YAML front matter as a dict (empty when absent or unreadable) and the body after it."""
    text = text.lstrip("\ufeff")
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        meta = None
    return (meta if isinstance(meta, dict) else {}), text[match.end():]


def strip_template_tags(body: str) -> str:
    """Remove Liquid/Nunjucks tags that static-site handbooks are full of, keeping what they name."""
    body = _remove_spans(body, *_LIQUID_COMMENT)
    body = _LIQUID_QUOTED.sub(lambda m: f"#{m.group(2)}" if m.group(1) == "slack_channel" else m.group(2), body)
    for opening, closing in (_LIQUID_TAG, _LIQUID_OUTPUT, _HTML_COMMENT):
        body = _remove_spans(body, opening, closing)
    return body


def _remove_spans(text: str, opening: re.Pattern, closing: re.Pattern) -> str:
    """``text`` without each span from an opening to the next closing; an opening never closed stays."""
    parts, position = [], 0
    while (start := opening.search(text, position)) and (end := closing.search(text, start.end())):
        parts.append(text[position:start.start()])
        position = end.end()
    parts.append(text[position:])
    return "".join(parts)


def meta_date(meta: dict, *keys: str) -> datetime | None:
    for key in keys:
        value = meta.get(key)
        if isinstance(value, datetime):
            return value
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.strip())
            except ValueError:
                continue
    return None


def meta_people(meta: dict, *keys: str) -> tuple[str, ...]:
    people: list[str] = []
    for key in keys:
        value = meta.get(key)
        values = value if isinstance(value, list) else [value] if value else []
        people.extend(_person(str(v)) for v in values)
    return tuple(dict.fromkeys(p for p in people if p))


def _person(value: str) -> str:
    """'Tomás Herrera (Platform) <th@x.io>' -> 'Tomás Herrera': a name the people filter can match."""
    return " ".join(re.sub(r"\([^)]*\)|<[^>]*>", " ", value).split())


def _inline_text(tok, links: bool = True) -> str:
    """The text of an inline token; with ``links``, each link as ``label (url)``."""
    parts: list[str] = []
    opened: list[tuple[str, int]] = []  # each open link's target and where its label starts in parts
    for child in tok.children or []:
        if child.type in ("text", "code_inline", "image"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "link_open":
            opened.append((str(child.attrGet("href") or ""), len(parts)))
        elif child.type == "html_inline" and (tag := _HTML_LINK.match(child.content)):
            opened.append((html.unescape(next((g for g in tag.groups() if g is not None), "")), len(parts)))
        elif opened and (child.type == "link_close" or child.type == "html_inline"
                         and _HTML_LINK_END.match(child.content)):
            target, start = opened.pop()
            if links:
                parts[start:] = [labelled("".join(parts[start:]), target)]
    return " ".join("".join(parts).split())


def _table(tokens, i: int) -> tuple[int, str]:
    rows: list[str] = []
    cells: list[str] = []
    while tokens[i].type != "table_close":
        tok = tokens[i]
        if tok.type == "tr_open":
            cells = []
        elif tok.type == "inline":
            cells.append(_inline_text(tok))
        elif tok.type == "tr_close":
            rows.append(" | ".join(cells))
        i += 1
    return i + 1, "\n".join(rows)


def _merge_list_items(blocks: list[MarkdownBlock]) -> list[MarkdownBlock]:
    """Consecutive list items under one heading read as one list, not as separate paragraphs."""
    groups: list[list[MarkdownBlock]] = []
    for block in blocks:
        last = groups[-1][-1] if groups else None
        if last and last.headings == block.headings and block.item and last.item:
            groups[-1].append(block)  # joined once at the end: joining item by item is quadratic
        else:
            groups.append([block])
    return [MarkdownBlock("\n".join(b.text for b in group), group[0].headings, group[0].item) for group in groups]
