"""Every `--json` output is written here: one encoding (UTF-8 text, ISO 8601 times), shapes in docs/json.md."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path


def emit(shape: dict) -> None:
    """Print a command's JSON object; a shape is always an object with named fields, never a bare array."""
    print(json.dumps(shape, ensure_ascii=False, indent=2, default=_plain))


def _plain(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} has no JSON form; give it one in the command's shape")
