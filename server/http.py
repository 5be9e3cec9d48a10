"""Streamable HTTP for the MCP server: loopback by default; bearer tokens whenever it listens beyond."""

from __future__ import annotations

import asyncio
import hmac
import os

from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings

from corpus.config import ServerSettings
from corpus.errors import ConfigError

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class StaticTokens(TokenVerifier):
    """Tokens from the environment, each granting its access groups (as scopes)."""

    def __init__(self, tokens: dict[str, tuple[str, tuple[str, ...]]]):
        self.tokens = tokens  # value -> (name, groups)

    async def verify_token(self, token: str) -> AccessToken | None:
        for value, (name, groups) in self.tokens.items():
            if hmac.compare_digest(token.encode(), value.encode()):
                return AccessToken(token=token, client_id=name, scopes=list(groups))
        return None


def auth_for(settings: ServerSettings, host: str, port: int) -> tuple[StaticTokens | None, AuthSettings | None]:
    """Token checking for this listener; refuses to expose the corpus beyond loopback without tokens."""
    if not settings.tokens:
        if host not in LOOPBACK:
            raise ConfigError(
                f"server: refusing to listen on {host} without bearer tokens; add [[server.tokens]] "
                "(name, env, groups) or listen on 127.0.0.1"
            )
        return None, None
    tokens = {}
    for token in settings.tokens:
        value = os.environ.get(token.env, "")
        if len(value) < 16:
            raise ConfigError(f"server.tokens {token.name!r}: set ${token.env} to a secret of at least 16 characters")
        tokens[value] = (token.name, token.groups)
    url = f"http://{host}:{port}/mcp"
    return StaticTokens(tokens), AuthSettings(issuer_url=f"http://{host}:{port}", resource_server_url=url,
                                              validate_token_resource=False)


def transport_security(settings: ServerSettings, host: str) -> TransportSecuritySettings:
    """Host and Origin checks against DNS rebinding: loopback names always, others only when listed."""
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*", *settings.allowed_hosts]
    if host not in LOOPBACK and host not in ("0.0.0.0", "::"):
        hosts.append(f"{host}:*")
    origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*", *settings.allowed_origins]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts,
                                     allowed_origins=origins)


def guarded_protocol(header_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol, closing a connection whose request headers take longer than ``header_timeout``.

    uvicorn bounds idle keep-alive connections but not a request whose headers trickle in a byte at a
    time (slowloris): each such connection would hold a slot open for as long as its sender likes.
    """
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class SlowHeadersClosed(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(header_timeout, self.transport.close)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

    return SlowHeadersClosed
