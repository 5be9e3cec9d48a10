"""Onboarding question files for `corpus check`: Markdown, YAML or TOML, whichever a team already writes.

Markdown: headings are sections, list items are questions; an item's indented sub-items
``source: NAME`` and ``answer: TEXT`` say where the answer should come from and what it says.
YAML: a list of questions (strings or mappings), or a mapping of section -> list.
TOML: ``[[questions]]`` tables. Mappings and tables take ``question``, ``section``, ``source``, ``answer``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from corpus.errors import ConfigError

KEYS = {"question", "section", "source", "answer"}


@dataclass(frozen=True)
class Question:
    text: str
    section: str = ""
    source: str | None = None  # the source expected to answer it
    answer: str | None = None  # words the answer should contain


def load_questions(path: Path) -> list[Question]:
    """Every question in the file; a malformed file is a ConfigError naming it and the reason."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read questions: {exc}") from None
    return questions_from_text(text, path.suffix, path)


def questions_from_text(text: str, suffix: str, path: Path | str) -> list[Question]:
    """Questions in ``text``, read as a file with this suffix would be (a question list pasted into the web page);
    ``path`` names it in errors."""
    suffix = suffix.lower()
    if suffix == ".toml":
        questions = _from_toml(path, text)
    elif suffix in (".yaml", ".yml"):
        questions = _from_yaml(path, text)
    elif suffix in (".md", ".markdown", ".txt"):
        questions = _from_markdown(text)
    else:
        raise ConfigError(f"{path}: questions must be a .md, .yaml or .toml file")
    if not questions:
        raise ConfigError(f"{path}: no questions found (see `corpus check --help` for the formats)")
    return questions


def _from_markdown(text: str) -> list[Question]:
    questions: list[dict] = []
    section = ""
    for line in text.splitlines():
        heading = re.match(r"#{1,6}\s+(.+?)\s*#*$", line)
        if heading:
            section = heading.group(1)
            continue
        item = re.match(r"(\s*)(?:[-*+]|\d+[.)])\s+(.+)", line)
        if not item:
            continue
        indent, body = len(item.group(1).expandtabs(4)), item.group(2).strip()
        detail = re.fullmatch(r"(source|answer):\s*(.+)", body, re.I)
        if indent and detail and questions:
            questions[-1][detail.group(1).lower()] = detail.group(2).strip()
        elif not indent:
            questions.append({"question": body, "section": section})
    return [_question(q) for q in questions]


def _from_yaml(path: Path | str, text: str) -> list[Question]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if isinstance(data, dict) and "questions" not in data:
        return [q for section, items in data.items() for q in _entries(path, items, str(section))]
    return _entries(path, data.get("questions") if isinstance(data, dict) else data, "")


def _from_toml(path: Path | str, text: str) -> list[Question]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return _entries(path, data.get("questions"), "")


def _entries(path: Path | str, items: object, section: str) -> list[Question]:
    if not isinstance(items, list):
        raise ConfigError(f"{path}: expected a list of questions")
    questions = []
    for n, item in enumerate(items, start=1):
        if isinstance(item, str):
            item = {"question": item}
        if not isinstance(item, dict) or not isinstance(item.get("question"), str):
            raise ConfigError(f"{path}: question {n}: needs a 'question' text")
        unknown = set(item) - KEYS
        if unknown:
            raise ConfigError(f"{path}: question {n}: unknown key {sorted(unknown)[0]!r} "
                              f"(known: {', '.join(sorted(KEYS))})")
        questions.append(_question({"section": section, **item}))
    return questions


def _question(entry: dict) -> Question:
    return Question(text=str(entry["question"]).strip(), section=str(entry.get("section") or "").strip(),
                    source=entry.get("source") or None, answer=entry.get("answer") or None)
