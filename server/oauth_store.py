"""What corpus's authorization server must remember across restarts: registered clients, authorization codes and
grants (an access token with its refresh token), in ``oauth.sqlite`` in the store folder.

Codes and tokens are kept as SHA-256 hashes only: a copy of the file lets no one in. The file is the owner's
alone. Every call is one short transaction on the event loop's thread (a lookup by primary key or unique
index), so the loop never waits on a long write.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS clients (id TEXT PRIMARY KEY, info TEXT NOT NULL, used REAL NOT NULL);
CREATE TABLE IF NOT EXISTS codes (hash TEXT PRIMARY KEY, client TEXT NOT NULL, expires REAL NOT NULL,
                                  data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS grants (id INTEGER PRIMARY KEY, client TEXT NOT NULL, data TEXT NOT NULL,
                                   access TEXT NOT NULL UNIQUE, access_expires REAL NOT NULL,
                                   refresh TEXT NOT NULL UNIQUE, refresh_expires REAL NOT NULL, previous TEXT);
CREATE INDEX IF NOT EXISTS grants_client ON grants (client, refresh_expires);
CREATE INDEX IF NOT EXISTS grants_previous ON grants (previous);
"""

MAX_IDLE_CLIENTS = 1000  # registered clients holding no live grant; registering one more forgets the longest idle


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(prefix: str) -> str:
    """256 random bits; the prefix lets secret scanners and people tell corpus's tokens apart."""
    return prefix + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Grant:
    client: str
    data: dict  # scopes, resource, subject, label, groups: what the person's sign-in granted
    access_expires: float
    refresh_expires: float


@dataclass(frozen=True)
class Issued:
    access: str
    refresh: str
    access_expires: float


class OAuthStore:
    """Clients, codes and grants in one SQLite file (WAL: readers never wait for a writer)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))  # tokens' hashes and client secrets: owner only
        os.chmod(path, 0o600)
        self.path = path
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- clients ---------------------------------------------------------------------------------------

    def add_client(self, client_id: str, info: str) -> None:
        """Registers a client; beyond MAX_IDLE_CLIENTS idle ones, forgets those idle longest (a flood of
        registrations from nobody in particular cannot grow the file without bound)."""
        now = time.time()
        with self._write() as db:
            db.execute("INSERT INTO clients (id, info, used) VALUES (?, ?, ?)", (client_id, info, now))
            db.execute("DELETE FROM clients WHERE id IN (SELECT id FROM clients WHERE id NOT IN "
                       "(SELECT client FROM grants WHERE refresh_expires > ?) ORDER BY used DESC LIMIT -1 OFFSET ?)",
                       (now, MAX_IDLE_CLIENTS))

    def client(self, client_id: str) -> str | None:
        row = self.db.execute("SELECT info FROM clients WHERE id = ?", (client_id,)).fetchone()
        return None if row is None else row[0]

    # -- authorization codes ---------------------------------------------------------------------------

    def add_code(self, client_id: str, data: dict, seconds: float) -> str:
        code = new_secret("corpus_code_")
        now = time.time()
        with self._write() as db:
            db.execute("DELETE FROM codes WHERE expires <= ?", (now,))
            db.execute("INSERT INTO codes (hash, client, expires, data) VALUES (?, ?, ?, ?)",
                       (digest(code), client_id, now + seconds, json.dumps(data)))
            db.execute("UPDATE clients SET used = ? WHERE id = ?", (now, client_id))
        return code

    def code(self, client_id: str, code: str) -> tuple[dict, float] | None:
        row = self.db.execute("SELECT data, expires FROM codes WHERE hash = ? AND client = ? AND expires > ?",
                              (digest(code), client_id, time.time())).fetchone()
        return None if row is None else (json.loads(row[0]), row[1])

    def redeem(self, client_id: str, code: str, data: dict, access_seconds: float, refresh_seconds: float) \
            -> Issued | None:
        """Trades a code for a grant, once: None when the code was already used (or has expired)."""
        now = time.time()
        with self._write() as db:
            gone = db.execute("DELETE FROM codes WHERE hash = ? AND client = ? AND expires > ?",
                              (digest(code), client_id, now)).rowcount
            if not gone:
                return None
            db.execute("DELETE FROM grants WHERE refresh_expires <= ?", (now,))
            issued = Issued(new_secret("corpus_at_"), new_secret("corpus_rt_"), now + access_seconds)
            db.execute("INSERT INTO grants (client, data, access, access_expires, refresh, refresh_expires) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (client_id, json.dumps(data), digest(issued.access),
                                                     issued.access_expires, digest(issued.refresh),
                                                     now + refresh_seconds))
        return issued

    # -- grants ----------------------------------------------------------------------------------------

    def by_access(self, token: str) -> Grant | None:
        row = self.db.execute("SELECT client, data, access_expires, refresh_expires FROM grants "
                              "WHERE access = ? AND access_expires > ?", (digest(token), time.time())).fetchone()
        return None if row is None else Grant(row[0], json.loads(row[1]), row[2], row[3])

    def by_refresh(self, token: str) -> Grant | None:
        row = self.db.execute("SELECT client, data, access_expires, refresh_expires FROM grants "
                              "WHERE refresh = ? AND refresh_expires > ?", (digest(token), time.time())).fetchone()
        return None if row is None else Grant(row[0], json.loads(row[1]), row[2], row[3])

    def rotate(self, refresh: str, scopes: list[str], access_seconds: float) -> Issued | None:
        """A new access and refresh token for a live refresh token; the old pair stops working. The grant keeps
        its end: a person signs in again at the latest when the first refresh token would have expired."""
        now = time.time()
        issued = Issued(new_secret("corpus_at_"), new_secret("corpus_rt_"), now + access_seconds)
        with self._write() as db:
            row = db.execute("SELECT id, data FROM grants WHERE refresh = ? AND refresh_expires > ?",
                             (digest(refresh), now)).fetchone()
            if row is None:
                return None
            data = {**json.loads(row[1]), "scopes": scopes}
            db.execute("UPDATE grants SET access = ?, access_expires = ?, refresh = ?, previous = ?, data = ? "
                       "WHERE id = ?", (digest(issued.access), issued.access_expires, digest(issued.refresh),
                                        digest(refresh), json.dumps(data), row[0]))
        return issued

    def end_if_replayed(self, refresh: str) -> bool:
        """A refresh token used again after it was rotated means two parties hold it: the grant ends, so
        whichever of them is the thief loses access too (RFC 9700 4.14.2)."""
        with self._write() as db:
            return db.execute("DELETE FROM grants WHERE previous = ?", (digest(refresh),)).rowcount > 0

    def revoke(self, token: str) -> None:
        """Ends the grant this access or refresh token belongs to: both tokens stop working."""
        hashed = digest(token)
        with self._write() as db:
            db.execute("DELETE FROM grants WHERE access = ? OR refresh = ?", (hashed, hashed))
