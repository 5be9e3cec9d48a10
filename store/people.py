"""Who is in the corpus: the names a people filter can match, and each source's most present people.

``chunk_people`` keeps each chunk's people lowercased, for a filter that ignores case; ``person_names``
keeps how each name was written, for showing it. Every answer is counted over the chunks the caller
may read, so a name found only in a hidden source is never shown or matched.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable

from store.filters import Filters

SCHEMA = """
CREATE TABLE IF NOT EXISTS person_names (
    person TEXT PRIMARY KEY,
    name TEXT NOT NULL
);
"""

_WORD = re.compile(r"\w+")


def record(db: sqlite3.Connection, names: Iterable[str]) -> None:
    """Inside the caller's transaction; the first spelling seen is kept."""
    db.executemany("INSERT OR IGNORE INTO person_names (person, name) VALUES (?, ?)",
                   [(name.lower(), name) for name in names])


def known(db: sqlite3.Connection, groups: Iterable[str] | None) -> dict[str, str]:
    """Every person on a chunk these access groups may read: lowercased name → name as written."""
    join, where, args = _readable(groups)
    rows = db.execute(f"SELECT DISTINCT p.person FROM chunk_people p {join} {where}", args)
    spelled = _spellings(db)
    return {person: spelled.get(person, person) for (person,) in rows}


def top(db: sqlite3.Connection, groups: Iterable[str] | None, per_source: int) -> dict[str, list[str]]:
    """Per source, the people on most of its readable chunks, most present first."""
    _, where, args = _readable(groups)
    rows = db.execute(f"SELECT m.source, p.person, count(*) AS n FROM chunk_people p "
                      f"{_JOIN} {where} "
                      f"GROUP BY m.source, p.person ORDER BY m.source, n DESC, p.person", args)
    spelled = _spellings(db)
    found: dict[str, list[str]] = {}
    for source, person, _ in rows:
        names = found.setdefault(source, [])
        if len(names) < per_source:
            names.append(spelled.get(person, person))
    return found


def matching(name: str, people: dict[str, str]) -> list[str]:
    """The people a name given by a caller means: the full name in any case, or every person whose name
    holds all of its words ("sydney" → "Sydney Smith"), as lowercased keys."""
    key = " ".join(name.lower().split())
    if key in people:
        return [key]
    words = _WORD.findall(key)
    if not words:
        return []
    return sorted(person for person in people if all(w in _WORD.findall(person) for w in words))


_JOIN = "JOIN chunk_meta m ON m.rowid = p.chunk_rowid"


def _readable(groups: Iterable[str] | None) -> tuple[str, str, list]:
    """The join and condition that keep chunks these groups may read (none needed for local use)."""
    clauses, args = Filters(groups=None if groups is None else tuple(groups)).sql()
    if not clauses:
        return "", "", []
    return _JOIN, f"WHERE {' AND '.join(clauses)}", args


def _spellings(db: sqlite3.Connection) -> dict[str, str]:
    try:
        return dict(db.execute("SELECT person, name FROM person_names"))
    except sqlite3.OperationalError:  # a store written before names were kept as written: lowercased ones only
        return {}


def unnamed(db: sqlite3.Connection) -> list[tuple[str, str, list[str]]]:
    """Recordings whose diarized speakers are still called "Speaker N": (source, native id, those labels)."""
    try:
        rows = db.execute("SELECT DISTINCT d.source, d.native_id, p.person FROM chunk_people p "
                          f"{_JOIN} JOIN documents d ON d.doc_id = m.doc_id WHERE m.kind = 'meetings' "
                          "AND p.person GLOB 'speaker [0-9]*' ORDER BY d.source, d.native_id").fetchall()
    except sqlite3.OperationalError:  # a store from before the keyword index: nothing to say
        return []
    found: dict[tuple[str, str], list[int]] = {}
    for source, native_id, person in rows:
        found.setdefault((source, native_id), []).append(int(person.split()[1]))
    return [(source, native_id, [f"Speaker {n}" for n in sorted(numbers)])
            for (source, native_id), numbers in found.items()]
