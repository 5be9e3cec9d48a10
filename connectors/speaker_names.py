"""Names for diarized speakers: the ``<stem>.speakers.toml`` beside a recording, and proposals to confirm.

The file maps a label to a name, ``"Speaker 1" = "Ann Lee"``. Names proposed by Claude are written into the
same file as comments, with the words they were guessed from, so none takes effect until a person removes
the ``#`` in front of it.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

from corpus.errors import ItemError

SUFFIX = ".speakers.toml"
_LABEL = re.compile(r"Speaker \d+")
PROPOSALS_HEADER = "# Proposed from how people address each other; remove the '#' before each name that is right."


def sidecar(recording: Path) -> Path:
    """Where the names of a recording's speakers are kept: ``call.wav`` → ``call.speakers.toml``."""
    return recording.with_name(recording.stem + SUFFIX)


def read(path: Path) -> dict[str, str]:
    """The names in a sidecar (none when it is absent); ItemError naming the file when it is malformed."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ItemError(f"{path.name}: cannot read speaker names: {exc}") from None
    return checked(data, path.name)


def checked(names: Mapping[str, object], where: str) -> dict[str, str]:
    """``names`` when each key is a speaker label and each value a non-empty name; else ItemError."""
    for key, value in names.items():
        if not _LABEL.fullmatch(key):
            raise ItemError(f'{where}: {key!r} is not a speaker label (write "Speaker 1" = "Ann Lee")')
        if not isinstance(value, str) or not value.strip():
            raise ItemError(f"{where}: the name of {key!r} must be a non-empty string")
    return {key: " ".join(value.split()) for key, value in names.items()}


def is_label(speaker: str) -> bool:
    return _LABEL.fullmatch(speaker) is not None


def propose(path: Path, proposals: Mapping[str, tuple[str, str]]) -> list[str]:
    """Append ``{label: (name, evidence)}`` to the sidecar as commented lines, leaving what is there; the
    labels written (those not named or proposed already)."""
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    named = read(path)
    already = set(re.findall(r'^#\s*"(Speaker \d+)"\s*=', existing, re.M))
    lines = []
    for speaker, (name, evidence) in sorted(proposals.items(), key=lambda p: int(p[0].split()[1])):
        if speaker in named or speaker in already or not name.strip():
            continue
        quote = " ".join(evidence.split())[:120].replace('"', "'")
        lines.append(f'# "{speaker}" = "{_toml_string(name)}"  # "{quote}"')
    if lines:
        header = "" if PROPOSALS_HEADER in existing else PROPOSALS_HEADER + "\n"
        separator = "\n" if existing and not existing.endswith("\n") else ""
        path.write_text(existing + separator + header + "\n".join(lines) + "\n", encoding="utf-8")
    return [line.split('"')[1] for line in lines]


def _toml_string(value: str) -> str:
    return " ".join(value.split()).replace("\\", "\\\\").replace('"', '\\"')
