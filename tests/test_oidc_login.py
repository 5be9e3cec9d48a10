"""Signing in through a real OpenID Connect provider (npm oidc-provider on loopback, tests/oidc_idp.py): the callback,
the ID token's checks and the groups a person gets."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse

from corpus.config import GroupRule, OidcSettings
from server.oidc import BROWSER_COOKIE, CALLBACK_PATH, Logins, Person, SignInError
from tests.oidc_idp import USERS, running_idp, sign_in

pytestmark = pytest.mark.slow  # a node subprocess

PUBLIC_URL = "http://127.0.0.1:9"  # never requested: sign_in stops at the callback, which tests call in-process
REDIRECT_URI = PUBLIC_URL + CALLBACK_PATH
RULES = (GroupRule(domain="example.com", groups=("everyone",)),
         GroupRule(emails=("hana@example.com",), groups=("payroll",)))


@pytest.fixture(scope="module")
def idp():
    with running_idp([REDIRECT_URI]) as running:
        yield running


@pytest.fixture
def logins(idp, monkeypatch):
    monkeypatch.setenv("TEST_OIDC_SECRET", idp.client_secret)
    settings = OidcSettings(issuer=idp.issuer, client_id=idp.client_id, client_secret_env="TEST_OIDC_SECRET")
    return Logins(settings, RULES, PUBLIC_URL)


async def _to_callback(logins: Logins, user: str, seen: list[Person], browser: str | None = None) -> str:
    """Starts a sign-in whose `then` records the person, and plays the browser at the IdP up to the callback URL."""

    async def then(person: Person) -> PlainTextResponse:
        seen.append(person)
        return PlainTextResponse(f"signed in: {person.label}")

    url = await logins.begin(then, browser=browser)
    return await asyncio.to_thread(sign_in, None, url, user, REDIRECT_URI)


async def _call(logins: Logins, callback: str, browser: str | None = None) -> httpx.Response:
    app = Starlette(routes=logins.routes())
    cookies = {BROWSER_COOKIE: browser} if browser else None
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL,
                                 cookies=cookies) as client:
        return await client.get(callback)


@pytest.mark.parametrize("user", sorted(USERS))
def test_a_full_sign_in_names_the_person_with_their_groups(logins, user):
    seen: list[Person] = []

    async def flow() -> httpx.Response:
        return await _call(logins, await _to_callback(logins, user, seen))

    response = asyncio.run(flow())
    assert response.status_code == 200 and response.text == f"signed in: {USERS[user]['email']}"
    (person,) = seen
    assert person.subject == user and person.name == USERS[user]["name"]
    expected = {*USERS[user]["groups"], "everyone"} | ({"payroll"} if user == "hana" else set())
    assert set(person.groups) == expected
    assert logins.groups_of(person.label) == person.groups


def test_a_replayed_or_unknown_state_is_refused(logins):
    seen: list[Person] = []

    async def flow() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        callback = await _to_callback(logins, "omar", seen)
        first = await _call(logins, callback)
        again = await _call(logins, callback)
        unknown = await _call(logins, f"{CALLBACK_PATH}?code=abc&state={secrets.token_urlsafe(16)}")
        return first, again, unknown

    first, again, unknown = asyncio.run(flow())
    assert first.status_code == 200 and len(seen) == 1
    for refused in (again, unknown):
        assert refused.status_code == 400
        assert "This sign-in is unknown, already used or expired" in refused.text


def test_a_sign_in_completes_only_in_the_browser_that_started_it(logins):
    """Someone who hands a victim the way back from their own sign-in must not sign the victim in as themselves."""
    seen: list[Person] = []

    async def flow() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        elsewhere = await _call(logins, await _to_callback(logins, "omar", seen, browser="mine"), browser="theirs")
        no_cookie = await _call(logins, await _to_callback(logins, "omar", seen, browser="mine"))
        here = await _call(logins, await _to_callback(logins, "omar", seen, browser="mine"), browser="mine")
        return elsewhere, no_cookie, here

    elsewhere, no_cookie, here = asyncio.run(flow())
    for refused in (elsewhere, no_cookie):
        assert refused.status_code == 400 and "started in another browser" in refused.text
    assert here.status_code == 200 and len(seen) == 1


def test_an_error_from_the_provider_is_one_line(logins):
    async def flow() -> httpx.Response:
        url = await logins.begin(lambda person: pytest.fail("signed in despite the error"))
        state = httpx.URL(url).params["state"]
        return await _call(logins, f"{CALLBACK_PATH}?error=access_denied&error_description=The+user%0Asaid+no"
                                   f"&state={state}")

    response = asyncio.run(flow())
    assert response.status_code == 400
    assert "The sign-in provider refused: access_denied: The user said no</p>" in response.text
    assert response.headers["content-security-policy"].startswith("default-src 'none'")


def test_a_tampered_id_token_is_refused(idp, logins):
    """A real ID token from the provider verifies; the same token with its payload edited does not."""

    async def real_token() -> tuple[dict, str]:
        metadata = await logins.provider.load_server_metadata()
        async with AsyncOAuth2Client(idp.client_id, idp.client_secret, scope="openid email profile",
                                     redirect_uri=REDIRECT_URI, code_challenge_method="S256") as client:
            nonce, verifier = secrets.token_urlsafe(16), secrets.token_urlsafe(48)
            url, state = client.create_authorization_url(metadata["authorization_endpoint"], nonce=nonce,
                                                         code_verifier=verifier)
            callback = await asyncio.to_thread(sign_in, None, url, "omar", REDIRECT_URI)
            token = await client.fetch_token(metadata["token_endpoint"], authorization_response=callback,
                                             state=state, code_verifier=verifier)
        return dict(token), nonce

    token, nonce = asyncio.run(real_token())
    assert asyncio.run(logins.identify(token, nonce)).subject == "omar"

    header, payload, signature = token["id_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["groups"] = ["hr"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    with pytest.raises(SignInError, match="ID token was refused: bad_signature"):
        asyncio.run(logins.identify({**token, "id_token": f"{header}.{forged}.{signature}"}, nonce))
    with pytest.raises(SignInError, match="ID token was refused: invalid_claim"):
        asyncio.run(logins.identify(token, "another nonce"))


def test_an_expired_sign_in_is_refused(logins, monkeypatch):
    seen: list[Person] = []

    async def flow() -> httpx.Response:
        callback = await _to_callback(logins, "hana", seen)
        monkeypatch.setattr("server.oidc.PENDING_SECONDS", -1)  # as if ten minutes had passed at the provider
        return await _call(logins, callback)

    response = asyncio.run(flow())
    assert response.status_code == 400 and "expired" in response.text and not seen


def test_pending_sign_ins_are_capped(logins, monkeypatch):
    monkeypatch.setattr("server.oidc.MAX_PENDING", 3)

    async def start(n: int) -> list[str]:
        return [httpx.URL(await logins.begin(PlainTextResponse)).params["state"] for _ in range(n)]

    states = asyncio.run(start(5))
    assert list(logins._pending) == states[-3:]


def test_group_rules_apply_to_verified_addresses_only(logins):
    claims = {"sub": "x1", "email": "hana@example.com", "groups": "hr"}
    assert logins._person(claims).groups == ("everyone", "hr", "payroll")
    assert logins._person({**claims, "email_verified": False}).groups == ("hr",)
    assert logins._person({"sub": "x2", "email": "eve@elsewhere.org", "groups": [3, "eng"]}).groups == ("eng",)
    nobody = logins._person({"sub": "x3"})
    assert nobody.groups == () and nobody.label == "x3"
