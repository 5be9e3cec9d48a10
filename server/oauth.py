"""corpus as the OAuth 2.1 authorization server for its own /mcp, so Claude's connectors (which cannot send a
static header) can reach it: people sign in at the organisation's OpenID Connect provider, approve the client
once on corpus's own page, and the client gets corpus's tokens carrying that person's access groups.

The SDK serves the endpoints (metadata, /register, /authorize, /token, /revoke) and checks bearer tokens on
/mcp; this module is the provider behind them: what to store, what a token grants, and the consent step.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import urlsplit

from jinja2 import Environment
from mcp.server.auth.provider import (
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    OAuthAuthorizationServerProvider,
    RefreshToken,
    RegistrationError,
    TokenError,
    TokenVerifier,
    construct_redirect_uri,
)
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyHttpUrl, ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corpus.config import LOOPBACK, Config, OidcSettings
from server.http import Caller
from server.oauth_store import OAuthStore
from server.oidc import Logins, Person, SignInError

CODE_SECONDS = 300  # an authorization code is redeemed within seconds; five minutes is the usual ceiling
CONSENT_SECONDS = 600  # a consent page left open longer must start again
MAX_CONSENTS = 1000  # consent pages in flight (each follows a real sign-in at the provider)
MAX_CLIENT_BYTES = 8192  # a client's registered metadata: names, a few redirect URIs
MAX_FORM_BYTES = 64 * 1024  # a request to an OAuth endpoint: a form or a registration of a few hundred bytes
CONSENT_PATH = "/oauth/consent"
OAUTH_PATHS = frozenset({"/register", "/authorize", "/token", "/revoke", CONSENT_PATH})


class Code(AuthorizationCode):
    groups: list[str]
    label: str


@dataclass(frozen=True)
class Pending:
    """A signed-in person looking at the consent page for one client's authorization request."""

    client: OAuthClientInformationFull
    params: AuthorizationParams
    resource: str
    person: Person
    expires: float


CONSENT_PAGE = Environment(autoescape=True).from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Allow access to corpus?</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 36rem; margin: 3rem auto; line-height: 1.5">
<h1>Allow {{ client }} to search corpus?</h1>
<p>You are signed in as <strong>{{ person }}</strong>. {{ client }} will search and read what you may read in
this organisation's corpus, for up to {{ days }} days or until it disconnects.</p>
<p>After you allow it, your browser goes to <strong>{{ host }}</strong>. If you did not just ask to connect
{{ client }}, do not allow it.</p>
{% for answer in ("allow", "deny") %}
<form method="post" action="{{ action }}" style="display: inline">
<input type="hidden" name="ticket" value="{{ ticket }}"><input type="hidden" name="answer" value="{{ answer }}">
<button>{{ answer | capitalize }}</button></form>
{% endfor %}</body></html>""")
CONSENT_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'"


class OAuthProvider(OAuthAuthorizationServerProvider[Code, RefreshToken, Caller]):
    """The SDK's OAuthAuthorizationServerProvider: dynamic registration, sign-in through ``logins``, a consent
    page, codes, rotating refresh tokens, revocation. ``static`` ([[server.tokens]]) keeps working beside it."""

    def __init__(self, store: OAuthStore, logins: Logins, settings: OidcSettings, public_url: str,
                 static: TokenVerifier | None = None):
        self.store = store
        self.logins = logins
        self.settings = settings
        self.public_url = public_url
        self.resource = public_url + "/mcp"
        self.static = static
        self._consents: OrderedDict[str, Pending] = OrderedDict()

    @classmethod
    def open(cls, config: Config, logins: Logins, static: TokenVerifier | None) -> OAuthProvider:
        """The provider of a configured server, its grants in the store folder (a restart signs no one out)."""
        assert config.server.oidc is not None and config.server.public_url is not None  # config validation
        return cls(OAuthStore(config.store_path / "oauth.sqlite"), logins, config.server.oidc,
                   config.server.public_url, static)

    def auth_settings(self) -> AuthSettings:
        """What the SDK needs to serve the endpoints and to refuse tokens issued for another resource."""
        return AuthSettings(issuer_url=self.public_url, resource_server_url=self.resource,
                            validate_token_resource=True,
                            client_registration_options=ClientRegistrationOptions(enabled=True),
                            revocation_options=RevocationOptions(enabled=True))

    def routes(self) -> list[Route]:
        return [Route(CONSENT_PATH, self._answer, methods=["POST"])]

    def guard(self, app: ASGIApp) -> ASGIApp:
        """``app`` with the OAuth endpoints' request bodies capped: the SDK's handlers read a body whole, and anyone
        may call them."""
        return BodyLimit(app)

    # -- clients ---------------------------------------------------------------------------------------

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        info = self.store.client(client_id)
        return None if info is None else OAuthClientInformationFull.model_validate_json(info)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        for uri in client_info.redirect_uris or ():
            if uri.scheme == "http" and (uri.host or "").strip("[]") not in LOOPBACK:
                raise RegistrationError("invalid_redirect_uri", f"{uri}: use https (http only on loopback)")
        info = client_info.model_dump_json(exclude_none=True)
        if len(info) > MAX_CLIENT_BYTES:
            raise RegistrationError("invalid_client_metadata", f"client metadata over {MAX_CLIENT_BYTES} bytes")
        self.store.add_client(client_info.client_id, info)

    # -- authorization: sign-in at the provider, then consent here -------------------------------------

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        resource = self.resource
        if params.resource is not None and not self._is_ours(params.resource):
            raise AuthorizeError("invalid_target", f"this server grants access to {self.resource} only")

        async def then(person: Person) -> Response:
            return self._consent_page(Pending(client, params, resource, person, time.time() + CONSENT_SECONDS))

        try:
            return await self.logins.begin(then)
        except SignInError as exc:
            raise AuthorizeError("temporarily_unavailable", str(exc)) from None

    def _is_ours(self, resource: str) -> bool:
        try:
            return str(AnyHttpUrl(resource)).removesuffix("/") == str(AnyHttpUrl(self.resource)).removesuffix("/")
        except ValidationError:
            return False

    def _consent_page(self, pending: Pending) -> Response:
        now = time.time()
        while self._consents and (len(self._consents) >= MAX_CONSENTS or
                                  next(iter(self._consents.values())).expires < now):
            self._consents.popitem(last=False)
        ticket = secrets.token_urlsafe(32)
        self._consents[ticket] = pending
        client = pending.client.client_name or pending.client.client_id
        page = CONSENT_PAGE.render(client=client, person=pending.person.label, ticket=ticket, action=CONSENT_PATH,
                                   host=urlsplit(str(pending.params.redirect_uri)).netloc or
                                   str(pending.params.redirect_uri), days=self.settings.refresh_token_days)
        return HTMLResponse(page, headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                                           "Content-Security-Policy": CONSENT_CSP})

    async def _answer(self, request: Request) -> Response:
        form = await request.form()
        pending = self._consents.pop(str(form.get("ticket", "")), None)
        if pending is None or pending.expires < time.time():
            return HTMLResponse("<p>This approval page has expired or was already used; connect again from your "
                                "application.</p>", 400)
        redirect = str(pending.params.redirect_uri)
        if form.get("answer") != "allow":
            return RedirectResponse(construct_redirect_uri(redirect, error="access_denied", state=pending.params.state),
                                    302, headers={"Cache-Control": "no-store"})
        person, params = pending.person, pending.params
        code = self.store.add_code(pending.client.client_id, {
            "scopes": params.scopes or [], "code_challenge": params.code_challenge, "redirect_uri": redirect,
            "redirect_uri_provided_explicitly": params.redirect_uri_provided_explicitly,
            "resource": pending.resource, "subject": person.subject, "groups": list(person.groups),
            "label": person.label}, CODE_SECONDS)
        return RedirectResponse(construct_redirect_uri(redirect, code=code, state=pending.params.state), 302,
                                headers={"Cache-Control": "no-store"})

    # -- tokens ----------------------------------------------------------------------------------------

    async def load_authorization_code(self, client: OAuthClientInformationFull, authorization_code: str) \
            -> Code | None:
        found = self.store.code(client.client_id, authorization_code)
        if found is None:
            return None
        data, expires = found
        return Code(code=authorization_code, client_id=client.client_id, expires_at=expires, **data)

    async def exchange_authorization_code(self, client: OAuthClientInformationFull,
                                          authorization_code: Code) -> OAuthToken:
        grant = {"scopes": authorization_code.scopes, "resource": authorization_code.resource,
                 "subject": authorization_code.subject, "groups": authorization_code.groups,
                 "label": authorization_code.label}
        issued = self.store.redeem(client.client_id, authorization_code.code, grant,
                                   self.settings.access_token_seconds, self.settings.refresh_token_days * 86400)
        if issued is None:
            raise TokenError("invalid_grant", "authorization code already used or expired")
        return self._token(issued.access, issued.refresh, authorization_code.scopes)

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> RefreshToken | None:
        grant = self.store.by_refresh(refresh_token)
        if grant is None:
            self.store.end_if_replayed(refresh_token)
            return None
        if grant.client != client.client_id:
            return None
        return RefreshToken(token=refresh_token, client_id=grant.client, scopes=grant.data["scopes"],
                            expires_at=int(grant.refresh_expires), resource=grant.data["resource"],
                            subject=grant.data["subject"])

    async def exchange_refresh_token(self, client: OAuthClientInformationFull, refresh_token: RefreshToken,
                                     scopes: list[str]) -> OAuthToken:
        issued = self.store.rotate(refresh_token.token, scopes, self.settings.access_token_seconds)
        if issued is None:
            raise TokenError("invalid_grant", "refresh token already used, revoked or expired")
        return self._token(issued.access, issued.refresh, scopes)

    def _token(self, access: str, refresh: str, scopes: list[str]) -> OAuthToken:
        return OAuthToken(access_token=access, expires_in=self.settings.access_token_seconds,
                          refresh_token=refresh, scope=" ".join(scopes) or None)

    async def load_access_token(self, token: str) -> Caller | None:
        if self.static is not None and (found := await self.static.verify_token(token)) is not None:
            return found
        grant = self.store.by_access(token)
        if grant is None:
            return None
        return Caller(token=token, client_id=grant.client, scopes=grant.data["scopes"],
                      expires_at=int(grant.access_expires), resource=grant.data["resource"],
                      subject=grant.data["subject"], groups=grant.data["groups"], label=grant.data["label"])

    async def revoke_token(self, token: Caller | RefreshToken) -> None:
        self.store.revoke(token.token)  # a static token matches no grant: revoking it here does nothing


class BodyLimit:
    """Reads an OAuth endpoint's request body up to MAX_FORM_BYTES, answering 413 beyond, then hands it on."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in OAUTH_PATHS:
            await self.app(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_FORM_BYTES:
                await PlainTextResponse(f"request body over {MAX_FORM_BYTES} bytes", 413)(scope, receive, send)
                return
        pending: list[Message] = [{"type": "http.request", "body": bytes(body), "more_body": False}]

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)
