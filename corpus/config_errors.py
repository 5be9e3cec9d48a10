"""corpus.toml problems a user can act on: every one at once, each with its line and the nearest valid name."""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from corpus.errors import ConfigError

HIDDEN_KEYS = frozenset({"root"})  # set by the loader, never written in corpus.toml


def closest(name: object, choices: Iterable[str]) -> str | None:
    """The choice a typo most likely meant, or None when none is close."""
    close = difflib.get_close_matches(str(name), sorted(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(name: object, choices: Iterable[str], form: str = "{}") -> str:
    """" (did you mean `path`?)" for the closest choice, or "" when none is close."""
    close = closest(name, choices)
    return f" (did you mean `{form.format(close)}`?)" if close else ""


def unknown_name(what: str, name: object, choices: Iterable[str]) -> str:
    """The message for a name that is none of ``choices``: "unknown kind `dcos` (did you mean `docs`?); ..."."""
    choices = sorted(choices)
    if name is None:
        return f"missing; give one of the {what}s: {', '.join(choices)}"
    return f"unknown {what} `{name}`{did_you_mean(name, choices)}; known {what}s: {', '.join(choices)}"


class Problems:
    """Collects problems while a config is read, so that one run reports them all."""

    def __init__(self, path: Path, text: str):
        self.path, self.text = path, text
        self._found: list[tuple[int | str, str]] = []

    def add(self, loc: tuple[Any, ...], message: str) -> None:
        line = line_of(self.text, loc) if loc else "?"
        where = f"{self.path}:{line}: {dotted(loc)}: " if loc else f"{self.path}: "
        self._found.append((line, where + message))

    def add_validation(self, exc: ValidationError, model: type[BaseModel], prefix: tuple[Any, ...] = ()) -> None:
        """Pydantic's errors for ``model``, with a suggestion for each unknown key; a missing key that an unknown
        one was meant to be (``pth`` for ``path``) is not reported twice."""
        errors = exc.errors()
        meant = set()
        for error in errors:
            if error["type"] == "extra_forbidden":
                *parent, key = error["loc"]
                meant.add((*parent, closest(key, keys_of(model, parent))))
        for error in errors:
            loc = tuple(error["loc"])
            if error["type"] == "missing" and loc in meant:
                continue
            if error["type"] == "extra_forbidden":
                message = _unknown((*prefix, *loc), error["input"], keys_of(model, loc[:-1]))
                message += _belongs(model, loc)
            else:
                message = error["msg"]
            self.add((*prefix, *loc), message)

    def raise_if_any(self) -> None:
        if self._found:
            in_file_order = sorted(self._found, key=lambda f: (0, f[0]) if isinstance(f[0], int) else (1, 0))
            raise ConfigError("\n".join(message for _, message in in_file_order))


def _unknown(loc: tuple[Any, ...], value: object, keys: set[str]) -> str:
    """"unknown key `pth` (did you mean `path`?)", or for a table "unknown section `[embeding]` (...)"."""
    key = str(loc[-1])
    tables = isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)
    if not isinstance(value, dict) and not tables:
        return f"unknown key `{key}`{did_you_mean(key, keys)}"
    outer = "".join(f"{p}." for p in loc[:-1] if not isinstance(p, int))
    form = ("[[{}]]" if tables else "[{}]").format(outer + "{}")
    return f"unknown section `{form.format(key)}`{did_you_mean(key, keys, form)}"


def _belongs(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """" (it belongs in `[ingest]`)" for a key with no close match where it is but a home in another section."""
    *parent, key = loc
    if closest(key, keys_of(model, parent)):
        return ""
    homes = sorted(_header(model, section) for section in keys_of(model, [])
                   if [section] != parent and key in keys_of(model, [section]))
    return f" (it belongs in {' or '.join(homes)})" if homes else ""


def _header(model: type[BaseModel], section: str) -> str:
    """How a section of ``model`` is written: `[server]`, or `[[sources]]` for an array of tables."""
    many = typing.get_origin(model.model_fields[section].annotation) is tuple
    return f"`[[{section}]]`" if many else f"`[{section}]`"


def keys_of(model: type[BaseModel], loc: Iterable[Any]) -> set[str]:
    """The keys the table at ``loc`` (a pydantic location inside ``model``) may hold, from the models themselves."""
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        inner = _model_in(field.annotation) if field else None
        if inner is None:
            return set()
        model = inner
    return set(model.model_fields) - HIDDEN_KEYS


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model inside ``X``, ``X | None`` or ``tuple[X, ...]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.GenericAlias | types.UnionType) or typing.get_origin(annotation):
        for arg in typing.get_args(annotation):
            if (found := _model_in(arg)) is not None:
                return found
    return None


def dotted(loc: Iterable[Any]) -> str:
    """("sources", 1, "path") -> "sources[1].path"."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")


def line_of(text: str, loc: tuple[Any, ...]) -> int | str:
    """Best-effort line of a key given as a pydantic location: its ``key =`` line, else its own ``[table]`` header
    (an unknown section), else the header of the table holding it; "?" when none is found."""
    table: list[str] = []
    counts: dict[str, int] = {}
    names = [str(p) for p in loc if not isinstance(p, int)]
    want_table, key = names[:-1], (names[-1] if names else "")
    want_index = next((p for p in loc if isinstance(p, int)), None)
    table_line: int | str = "?"
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        header = re.fullmatch(r"\[\[?\s*([\w.-]+)\s*\]\]?(\s*#.*)?", stripped)
        if header:
            table = header.group(1).split(".")
            if stripped.startswith("[["):
                counts[header.group(1)] = counts.get(header.group(1), -1) + 1
            index_ok = want_index is None or counts.get(header.group(1)) == want_index
            if table == names and (want_index is None or stripped.startswith("[[")) and index_ok:
                return number  # the location is this table itself
            if table == want_table and index_ok:
                table_line = number
            continue
        index_ok = want_index is None or counts.get(".".join(table), -1) == want_index
        if table == want_table and index_ok and re.match(rf"{re.escape(key)}\s*=", stripped):
            return number
    return table_line
