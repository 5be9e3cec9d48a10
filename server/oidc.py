"""Signing people in through the organisation's OpenID Connect provider, for the web page and for Claude's connectors.

Authlib does the protocol: discovery (cached), the authorization request with PKCE (S256), state and nonce, the code
exchange, and the ID token's check against the provider's keys (cached; fetched again once for an unknown key id):
signature, iss, aud, exp and nonce. This module keeps the sign-ins in flight, one callback for both surfaces, and
turns the checked claims into a `Person` with access groups: the provider's groups claim plus every
``[[server.groups]]`` rule matching a verified e-mail address.
"""

from __future__ import annotations

import hmac
import html
import os
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from authlib.integrations.base_client import OAuthError
from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App
from joserfc.errors import JoseError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from corpus.config import GroupRule, OidcSettings
from corpus.errors import ConfigError, CorpusError

CALLBACK_PATH = "/oauth/callback"  # the redirect URI registered at the provider is public_url + CALLBACK_PATH
BROWSER_COOKIE = "corpus_signin"  # ties a sign-in to the browser that started it
PENDING_SECONDS = 600  # a person has ten minutes at the provider's sign-in page
MAX_PENDING = 1000  # sign-ins in flight; a flood of starts drops the oldest rather than growing memory
MAX_PEOPLE = 10_000  # people whose groups the gaps page can look up
TIMEOUT = 10.0  # seconds per request to the provider
CLOCK_SKEW = 120  # seconds of leeway on the ID token's times
ERROR_CSP = "default-src 'none'; base-uri 'none'; frame-ancestors 'none'"


class SignInError(CorpusError):
    """The provider cannot be reached or answered something unusable; the message is one line."""


@dataclass(frozen=True)
class Person:
    subject: str  # the provider's `sub`
    email: str | None
    name: str | None
    groups: tuple[str, ...]  # the groups claim (if any) plus every matching [[server.groups]] rule

    @property
    def label(self) -> str:
        """What the question log and the page show: the e-mail address, else the provider's subject."""
        return self.email or self.subject


Then = Callable[[Person], Awaitable[Response]]


@dataclass(frozen=True)
class _Pending:
    then: Then
    nonce: str
    code_verifier: str
    started: float
    browser: str | None


class Logins:
    """Sign-ins in flight with the IdP: one callback, /oauth/callback, for the MCP authorization flow and the web
    page. Built once per server; the sign-ins it holds are lost on restart (a person starts again)."""

    def __init__(self, settings: OidcSettings, rules: tuple[GroupRule, ...], public_url: str):
        secret = os.environ.get(settings.client_secret_env, "")
        if not secret:
            raise ConfigError(f"server.oidc.client_secret_env: set ${settings.client_secret_env} to the client "
                              "secret the provider gave corpus")
        self.settings, self.rules = settings, rules
        self.redirect_uri = public_url.rstrip("/") + CALLBACK_PATH
        self.provider: StarletteOAuth2App = OAuth().register(
            "oidc", client_id=settings.client_id, client_secret=secret,
            server_metadata_url=settings.issuer + "/.well-known/openid-configuration",
            client_kwargs={"scope": " ".join(settings.scopes), "code_challenge_method": "S256", "timeout": TIMEOUT})
        self._pending: OrderedDict[str, _Pending] = OrderedDict()
        self._people: OrderedDict[str, tuple[str, ...]] = OrderedDict()

    async def begin(self, then: Then, browser: str | None = None) -> str:
        """Starts a sign-in; returns the IdP URL to send the browser to. `then` runs when the IdP sends the person back
        signed in, and its Response is what the browser gets.

        ``browser``: a random value also set in the browser's cookie (`browser_cookie`); the sign-in then completes
        only in that browser, so nobody can hand a victim the way back from their own sign-in (login CSRF)."""
        await self._discovery()
        started = await self.provider.create_authorization_url(self.redirect_uri)  # draws state, nonce, verifier
        self._forget_expired()
        while len(self._pending) >= MAX_PENDING:
            self._pending.popitem(last=False)
        self._pending[started["state"]] = _Pending(then, started["nonce"], started["code_verifier"], time.monotonic(),
                                                   browser)
        return started["url"]

    def routes(self) -> list[Route]:
        """GET /oauth/callback, where the provider sends the person back."""
        return [Route(CALLBACK_PATH, self._callback, methods=["GET"])]

    def groups_of(self, label: str) -> tuple[str, ...] | None:
        """The groups a person had at their last sign-in here (None: not signed in since the server started)."""
        return self._people.get(label)

    async def identify(self, token: dict, nonce: str) -> Person:
        """The person a token response names, once its ID token has checked out; SignInError when it does not."""
        if "id_token" not in token:
            raise SignInError("the provider sent no ID token: is \"openid\" among server.oidc.scopes?")
        options = {"iss": {"essential": True, "value": self.settings.issuer},
                   "aud": {"essential": True, "value": self.settings.client_id}}
        try:
            claims = dict(await self.provider.parse_id_token(token, nonce, claims_options=options, leeway=CLOCK_SKEW))
        except JoseError as exc:
            raise SignInError(f"the provider's ID token was refused: {_line(exc.error)}: "
                              f"{_line(exc.description or '')}") from None
        if self.settings.groups_claim not in claims or "email" not in claims:
            claims = await self._with_userinfo(token, claims)
        return self._person(claims)

    def _person(self, claims: dict) -> Person:
        email = claims.get("email") if isinstance(claims.get("email"), str) else None
        groups = set(_strings(claims.get(self.settings.groups_claim)))
        if email and claims.get("email_verified") not in (False, "false"):  # unverified: anyone could claim it
            for rule in self.rules:
                if rule.matches(email):
                    groups.update(rule.groups)
        name = claims.get("name") if isinstance(claims.get("name"), str) else None
        return Person(subject=str(claims["sub"]), email=email, name=name, groups=tuple(sorted(groups)))

    async def _with_userinfo(self, token: dict, claims: dict) -> dict:
        """Claims the ID token left out (some providers send e-mail and groups only from userinfo)."""
        metadata = await self._discovery()
        if "userinfo_endpoint" not in metadata:
            return claims
        try:
            info = await self.provider.userinfo(token=token)
        except (httpx.HTTPError, ValueError) as exc:
            raise SignInError(f"the provider's userinfo endpoint failed: {_line(str(exc))}") from None
        if info.get("sub") != claims["sub"]:
            raise SignInError("the provider's userinfo names another person than its ID token")
        return {**info, **claims}

    async def _discovery(self) -> dict:
        """The provider's metadata, fetched once; its issuer must be the configured one (OpenID Discovery 4.3)."""
        try:
            metadata = await self.provider.load_server_metadata()
        except (httpx.HTTPError, ValueError) as exc:
            raise SignInError(f"the sign-in provider {self.settings.issuer} cannot be reached: "
                              f"{_line(str(exc)) or type(exc).__name__}") from None
        if metadata.get("issuer") != self.settings.issuer:
            found = metadata.get("issuer")
            self.provider.server_metadata.clear()
            raise SignInError(f"{self.settings.issuer}: its discovery document names issuer {_line(str(found))!r}; "
                              "set server.oidc.issuer to the provider's exact issuer")
        return metadata

    async def _callback(self, request: Request) -> Response:
        params = request.query_params
        pending = self._pending.pop(params.get("state", ""), None)
        if params.get("error"):
            detail = params.get("error_description") or ""
            return _failed(f"The sign-in provider refused: {_line(params['error'])}"
                           + (f": {_line(detail)}" if detail else ""))
        if pending is None or time.monotonic() - pending.started > PENDING_SECONDS:
            return _failed("This sign-in is unknown, already used or expired (each lasts ten minutes, once): "
                           "start again.")
        if pending.browser is not None and not hmac.compare_digest(request.cookies.get(BROWSER_COOKIE, ""),
                                                                   pending.browser):
            return _failed("This sign-in was started in another browser: start again in this one.")
        try:
            token = await self.provider.fetch_access_token(redirect_uri=self.redirect_uri,
                                                           code=params.get("code", ""),
                                                           code_verifier=pending.code_verifier)
            person = await self.identify(token, pending.nonce)
        except OAuthError as exc:
            return _failed(f"The sign-in provider refused the code: {_line(exc.error or '')}"
                           + (f": {_line(exc.description)}" if exc.description else ""))
        except httpx.HTTPError as exc:
            return _failed(f"The sign-in provider cannot be reached: {_line(str(exc))}", 502)
        except SignInError as exc:
            return _failed(f"The sign-in did not check out: {exc}")
        self._people[person.label] = person.groups
        self._people.move_to_end(person.label)
        if len(self._people) > MAX_PEOPLE:
            self._people.popitem(last=False)
        return await pending.then(person)

    def _forget_expired(self) -> None:
        deadline = time.monotonic() - PENDING_SECONDS
        while self._pending and next(iter(self._pending.values())).started < deadline:
            self._pending.popitem(last=False)


def browser_cookie(response: Response, value: str, secure: bool) -> None:
    """Sets the cookie `Logins.begin(browser=value)` checks at the way back: Lax, as the provider's redirect back
    is a cross-site navigation, and sent to the callback only."""
    response.set_cookie(BROWSER_COOKIE, value, max_age=PENDING_SECONDS, path=CALLBACK_PATH, httponly=True,
                        samesite="lax", secure=secure)


def _strings(value: object) -> list[str]:
    """A groups claim as a list of names: providers send a list, a few a single string."""
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _line(text: str, limit: int = 300) -> str:
    """Provider-controlled text on our page: one line, bounded."""
    text = " ".join(re.sub(r"[\x00-\x1f\x7f]+", " ", text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _failed(message: str, status: int = 400) -> HTMLResponse:
    """A page with one line saying why, and a way back."""
    page = (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign-in failed</title></head>"
            f"<body><h1>Sign-in failed</h1><p class=\"reason\">{html.escape(message)}</p>"
            f"<p><a href=\"/\">Start again</a></p></body></html>")
    return HTMLResponse(page, status, headers={"content-security-policy": ERROR_CSP, "cache-control": "no-store",
                                               "x-content-type-options": "nosniff"})
