"""Who is at the browser: a signed session cookie naming the token a person signed in with, or the person the
organisation's sign-in provider named, and CSRF tokens.

The cookie never holds a token's value, only its name (or the person's label and access groups), a random session
id and an expiry, signed with a key this process draws at start (sessions end when the server restarts). A CSRF
token is derived from the session id, so a form posted from another site, which cannot read our cookie, cannot
carry it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

COOKIE = "corpus_session"
LIFETIME = 12 * 3600  # seconds a sign-in lasts: a working day


@dataclass(frozen=True)
class Visitor:
    sid: str  # random per browser session; its CSRF token derives from it
    name: str | None  # the token's name, or the person's label, once signed in
    groups: tuple[str, ...] | None  # access groups; None reads everything (no tokens configured: loopback only)
    fresh: bool = False  # the cookie must be (re)set on the response
    person: bool = False  # signed in through the provider: the cookie carries the groups, as no token names them

    @property
    def signed_in(self) -> bool:
        return self.name is not None


class Sessions:
    """Signs and reads session cookies; ``groups`` maps each token's name to its access groups (empty when people
    only sign in through the provider; None when the page is open)."""

    def __init__(self, groups: Mapping[str, Sequence[str]] | None, key: bytes | None = None):
        self.groups = None if groups is None else {name: tuple(g) for name, g in groups.items()}
        self._key = key or secrets.token_bytes(32)

    @property
    def open(self) -> bool:
        """No tokens configured: every visitor reads everything, as a local MCP session does."""
        return self.groups is None

    def visitor(self, cookie: str | None) -> Visitor:
        """The visitor this cookie names; a missing, forged, expired or unknown-token cookie starts afresh."""
        found = self._read(cookie) if cookie else None
        if found is None:
            return Visitor(secrets.token_urlsafe(16), None, None if self.open else (), fresh=True)
        sid, name, groups = found
        if self.open:
            return Visitor(sid, None, None)
        if name is not None and groups is not None:
            return Visitor(sid, name, groups, person=True)
        if name is None or name not in self.groups:
            return Visitor(sid, None, ())
        return Visitor(sid, name, self.groups[name])

    def cookie(self, visitor: Visitor) -> str:
        groups = list(visitor.groups or ()) if visitor.person else None
        payload = _b64(json.dumps([visitor.sid, visitor.name, int(time.time()) + LIFETIME, groups]).encode())
        return f"{payload}.{self._sign(payload)}"

    def signed_in(self, visitor: Visitor, name: str) -> Visitor:
        """A new session id at sign-in, so a session id planted before it is worth nothing after."""
        return Visitor(secrets.token_urlsafe(16), name, self.groups[name], fresh=True)

    def person_signed_in(self, label: str, groups: tuple[str, ...]) -> Visitor:
        """A person the provider named, with a new session id (as for a token)."""
        return Visitor(secrets.token_urlsafe(16), label, groups, fresh=True, person=True)

    def signed_out(self) -> Visitor:
        return Visitor(secrets.token_urlsafe(16), None, (), fresh=True)

    def csrf(self, visitor: Visitor) -> str:
        return self._sign("csrf:" + visitor.sid)

    def csrf_ok(self, visitor: Visitor, value: str) -> bool:
        return bool(value) and hmac.compare_digest(value, self.csrf(visitor))

    def log_id(self, visitor: Visitor) -> str:
        """The session as the question log knows it (links a search to the reading after it): not its id."""
        return self._sign("log:" + visitor.sid)[:16]

    def _read(self, cookie: str) -> tuple[str, str | None, tuple[str, ...] | None] | None:
        payload, _, signature = cookie.partition(".")
        if not signature or not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            sid, name, expires, groups = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (ValueError, TypeError):
            return None
        if not isinstance(sid, str) or expires <= time.time():
            return None
        return sid, name, None if groups is None else tuple(groups)

    def _sign(self, text: str) -> str:
        return _b64(hmac.new(self._key, text.encode(), hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
