"""Citation addresses that open off this machine: a source's ``url`` template, else the file's own URI.

A template names a file by ``{path}`` (relative to the source folder, with its suffix) or ``{path_noext}``;
it is checked when corpus.toml is read, so a typo is a config error, not a broken link in every hit.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from string import Formatter
from urllib.parse import quote, urlsplit, urlunsplit

PLACEHOLDERS = ("path", "path_noext")


def check_template(template: str) -> str:
    """The template unchanged; ValueError naming the problem when it is not one we can fill in."""
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in Formatter().parse(template)
                  if name is not None]
    except ValueError as exc:
        raise ValueError(f"{exc}; write a literal brace as {{{{ or }}}}") from None
    for name, spec, conversion in fields:
        if name not in PLACEHOLDERS or spec or conversion:
            raise ValueError(f"unknown placeholder {{{name}}}; use {{path}} or {{path_noext}}")
    if not urlsplit(template).scheme:
        raise ValueError("start with a scheme, e.g. https://")
    return template


def file_uri(path: Path, native_id: str, template: str | None) -> str:
    """Where a person opens the file ``native_id`` (its path in the source): the template, else file://."""
    if template is None:
        return path.resolve().as_uri()
    relative = PurePosixPath(native_id)
    return template.format(path=quote(str(relative)), path_noext=quote(str(relative.with_suffix(""))))


def with_query(uri: str, key: str, value: str) -> str:
    """``uri`` with ``key=value`` added to its query (before any fragment), as players take a start time."""
    parts = urlsplit(uri)
    pair = f"{quote(key)}={quote(value)}"
    return urlunsplit(parts._replace(query=f"{parts.query}&{pair}" if parts.query else pair))
