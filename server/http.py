"""Streamable HTTP for the MCP server: loopback by default; bearer tokens whenever it listens beyond."""

from __future__ import annotations

import asyncio
import hmac
import os
from urllib.parse import urlsplit

from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings

from corpus.config import LOOPBACK, ServerSettings
from corpus.errors import ConfigError


class Caller(AccessToken):
    """An access token with who holds it: the access groups it reads and the label the question log records
    (a static token's name, a signed-in person's e-mail; never a token's value)."""

    groups: list[str]
    label: str


class StaticTokens(TokenVerifier):
    """Tokens from the environment, each granting its access groups; ``resource``: the /mcp they are for."""

    def __init__(self, tokens: dict[str, tuple[str, tuple[str, ...]]], resource: str | None = None):
        self.tokens = tokens  # value -> (name, groups)
        self.resource = resource

    async def verify_token(self, token: str) -> Caller | None:
        for value, (name, groups) in self.tokens.items():
            if hmac.compare_digest(token.encode(), value.encode()):
                return Caller(token=token, client_id=name, scopes=list(groups), resource=self.resource,
                              groups=list(groups), label=name)
        return None


def auth_for(settings: ServerSettings, host: str, port: int) -> tuple[StaticTokens | None, AuthSettings | None]:
    """Token checking for this listener; refuses to expose the corpus beyond loopback without tokens or sign-in
    ([server.oidc]: people sign in through the organisation's provider)."""
    if not settings.tokens:
        if host not in LOOPBACK and settings.oidc is None:
            raise ConfigError(
                f"server: refusing to listen on {host} without bearer tokens or sign-in; add [[server.tokens]] "
                "(name, env, groups) or [server.oidc], or listen on 127.0.0.1"
            )
        return None, None
    tokens = {}
    for token in settings.tokens:
        value = os.environ.get(token.env, "")
        if len(value) < 16:
            raise ConfigError(f"server.tokens {token.name!r}: set ${token.env} to a secret of at least 16 characters")
        tokens[value] = (token.name, token.groups)
    url = f"{settings.public_url or f'http://{host}:{port}'}/mcp"
    return StaticTokens(tokens, url), AuthSettings(issuer_url=f"http://{host}:{port}", resource_server_url=url,
                                                   validate_token_resource=False)


def transport_security(settings: ServerSettings, host: str) -> TransportSecuritySettings:
    """Host and Origin checks against DNS rebinding: loopback names and ``public_url`` always, others only when
    listed."""
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*", *settings.allowed_hosts]
    if host not in LOOPBACK and host not in ("0.0.0.0", "::"):
        hosts.append(f"{host}:*")
    origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*", *settings.allowed_origins]
    if settings.public_url:  # the name people and Claude reach the server by, as the proxy passes it on
        public = urlsplit(settings.public_url)
        hosts += [public.netloc, f"{public.hostname}:*"]
        origins.append(f"{public.scheme}://{public.netloc}")
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
