"""corpus as an OAuth-protected MCP server, end to end: a real OpenID Connect provider (npm oidc-provider) signs two
people in, the mcp SDK's own OAuth client discovers, registers, authorizes with PKCE, calls every tool, refreshes
after expiry and revokes; the HR person sees HR's passages and the other never does, on any tool.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio
import httpx
import pytest
from mcp import ClientSession
from mcp.client.auth.oauth2 import OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from connectors import load_config
from ingest.dream import dream
from ingest.pipeline import ingest
from ingest.progress import Progress
from server.oauth_store import MAX_IDLE_CLIENTS
from store.questionlog import QuestionLog
from tests.conftest import docs_source, free_port, wait_for_port, write_config
from tests.oidc_idp import running_idp, sign_in
from tests.test_access import HR, HR_SECRETS, PUBLIC
from tests.tool_tour import every_tool

pytestmark = pytest.mark.slow  # an identity provider and an HTTP server, as subprocesses

ACCESS_SECONDS = 4  # corpus's access tokens expire this fast here, so the test sees a refresh
STATIC = {"CORPUS_TEST_TOKEN_ENG": "eng-bot-token-0123456789abcdef"}  # a [[server.tokens]] token beside OAuth
SECRET_ENV = "CORPUS_TEST_OIDC_SECRET"
CLIENT_REDIRECT = "http://127.0.0.1:9/callback"  # the client's own page; the test reads the redirect, never opens it
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                         "clientInfo": {"name": "probe", "version": "1"}}}


@dataclass
class Server:
    """A `corpus serve --http` subprocess over one store, restartable at another public address."""

    folder: Path
    port: int
    env: dict[str, str]
    public: str = ""
    proc: subprocess.Popen | None = None

    @property
    def mcp(self) -> str:
        return self.public + "/mcp"

    def start(self, public: str) -> None:
        config = self.folder / "corpus.toml"
        text = config.read_text()
        if self.public:
            config.write_text(text.replace(f'public_url = "{self.public}"', f'public_url = "{public}"'))
        self.public = public
        self.proc = subprocess.Popen([sys.executable, "-m", "cli.main", "--config", str(config), "serve", "--http",
                                     "--port", str(self.port)], env=self.env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory, embedder):
    folder = tmp_path_factory.mktemp("oauth")
    (folder / "wiki").mkdir()
    (folder / "hr").mkdir()
    (folder / "wiki" / "oncall.md").write_text(PUBLIC)
    (folder / "hr" / "stipend-2026.md").write_text(HR)
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    with running_idp([public + "/oauth/callback"]) as idp, pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_ENV, idp.client_secret)
        for name, value in STATIC.items():
            patch.setenv(name, value)
        config_path = write_config(
            folder, docs_source("wiki", folder / "wiki") + docs_source("hr", folder / "hr", access=["hr"]),
            extra=f"""
                [server]
                public_url = "{public}"
                [server.oidc]
                issuer = "{idp.issuer}"
                client_id = "{idp.client_id}"
                client_secret_env = "{SECRET_ENV}"
                access_token_seconds = {ACCESS_SECONDS}
                refresh_token_days = 1
                [[server.tokens]]
                name = "eng-bot"
                env = "CORPUS_TEST_TOKEN_ENG"
                groups = ["eng"]
                """)
        config = load_config(config_path)
        ingest(config, embedder=embedder, progress=Progress(interval=999))
        os.environ.pop("ANTHROPIC_API_KEY", None)
        assert dream(config).findings  # notes on hits, across the two sources: a surface that must not leak
        running = Server(folder, port, dict(os.environ))
        running.start(public)
        try:
            yield running
        finally:
            running.stop()


# -- a person at a browser, and an MCP client holding tokens in memory ------------------------------------------


class Memory(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


@dataclass
class Browser:
    """A person's browser: signs in at the provider as ``user``, reads corpus's consent page and allows."""

    user: str
    public: str
    consent: str = ""
    result: AuthorizationCodeResult | None = None
    authorize_urls: list[str] = field(default_factory=list)

    async def redirect(self, url: str) -> None:
        self.authorize_urls.append(url)
        self.result = await anyio.to_thread.run_sync(self._browse, url)

    async def callback(self) -> AuthorizationCodeResult:
        return self.result

    def _browse(self, url: str) -> AuthorizationCodeResult:
        with httpx.Client() as browser:
            back = sign_in(browser, url, self.user, stop_at=self.public + "/oauth/callback")
            page = browser.get(back)
            assert page.status_code == 200, page.text
            self.consent = page.text
            ticket = re.search(r'name="ticket" value="([^"]+)"', page.text).group(1)
            allowed = browser.post(self.public + "/oauth/consent", data={"ticket": ticket, "answer": "allow"})
            location = allowed.headers["location"]
            assert location.startswith(CLIENT_REDIRECT), location
            query = parse_qs(urlsplit(location).query)
            return AuthorizationCodeResult(code=query["code"][0], state=query["state"][0])


def oauth_client(server: Server, person: Browser, storage: Memory) -> OAuthClientProvider:
    metadata = OAuthClientMetadata(client_name="Test connector", redirect_uris=[CLIENT_REDIRECT],
                                   grant_types=["authorization_code", "refresh_token"], response_types=["code"],
                                   token_endpoint_auth_method="client_secret_post")
    return OAuthClientProvider(server.mcp, metadata, storage, person.redirect, person.callback)


def probe(server: Server, token: str) -> int:
    """The status /mcp answers an initialize carrying this bearer token."""
    with httpx.Client(timeout=30) as http:
        return http.post(server.mcp, json=INITIALIZE, headers={"Authorization": f"Bearer {token}",
                                                               "Accept": "application/json, text/event-stream"}
                         ).status_code


def refresh(server: Server, client: OAuthClientInformationFull, token: str) -> httpx.Response:
    with httpx.Client(timeout=30) as http:
        return http.post(server.public + "/token", data={"grant_type": "refresh_token", "refresh_token": token,
                                                         "client_id": client.client_id,
                                                         "client_secret": client.client_secret})


@dataclass
class Run:
    """What one person's connector saw, and the tokens it held along the way."""

    person: Browser
    storage: Memory
    seen: dict[str, str]
    before_expiry: OAuthToken | None = None
    after_refresh: OAuthToken | None = None
    statuses: dict[str, int] = field(default_factory=dict)


async def connect(server: Server, user: str, hr_ids: list[str] = (), expire: bool = False, tools: bool = True) \
        -> Run:
    person, storage = Browser(user, server.public), Memory()
    async with create_mcp_http_client(auth=oauth_client(server, person, storage)) as http, \
            streamable_http_client(server.mcp, http_client=http) as (read, write), \
            ClientSession(read, write) as session:
        await session.initialize()
        run = Run(person, storage, await every_tool(session, hr_ids) if tools else {})
        if expire:  # let the token expire unused, then use the session again: the client refreshes first
            run.before_expiry = storage.tokens
            await anyio.sleep(ACCESS_SECONDS + 1.5)
            run.statuses["expired"] = await anyio.to_thread.run_sync(probe, server, storage.tokens.access_token)
            run.seen["after refresh"] = (await session.call_tool(
                "search", {"query": "weekly on-call stipend for engineers"})).content[0].text
            run.after_refresh = fresh = storage.tokens
            run.statuses["fresh"] = await anyio.to_thread.run_sync(probe, server, fresh.access_token)
            tampered = fresh.access_token[:-2] + ("AA" if not fresh.access_token.endswith("AA") else "BB")
            run.statuses["tampered"] = await anyio.to_thread.run_sync(probe, server, tampered)
    return run


@pytest.fixture(scope="module")
def hana(server) -> Run:
    return asyncio.run(connect(server, "hana", expire=True))


@pytest.fixture(scope="module")
def omar(server, hana) -> Run:
    return asyncio.run(connect(server, "omar", hr_ids=hana.seen["hr ids"].split()))


# -- the tests ---------------------------------------------------------------------------------------------------


def test_discovery_points_an_unauthenticated_client_at_the_metadata(server):
    with httpx.Client(timeout=30) as http:
        refused = http.post(server.mcp, json=INITIALIZE, headers={"Accept": "application/json, text/event-stream"})
        assert refused.status_code == 401
        challenge = refused.headers["www-authenticate"]
        metadata_url = re.search(r'resource_metadata="([^"]+)"', challenge).group(1)
        assert metadata_url == server.public + "/.well-known/oauth-protected-resource/mcp"
        resource = http.get(metadata_url).json()
        assert resource["resource"] == server.mcp
        assert [s.rstrip("/") for s in resource["authorization_servers"]] == [server.public]
        issuer = http.get(server.public + "/.well-known/oauth-authorization-server").json()
    assert issuer["issuer"].rstrip("/") == server.public
    assert issuer["registration_endpoint"] == server.public + "/register"
    assert issuer["revocation_endpoint"] == server.public + "/revoke"
    assert issuer["code_challenge_methods_supported"] == ["S256"]
    assert "refresh_token" in issuer["grant_types_supported"]


def test_the_sdk_client_signs_hana_in_and_she_sees_hr(hana, server):
    # discovery, dynamic registration, PKCE, the provider's sign-in and corpus's consent page
    assert hana.storage.client is not None and hana.storage.client.client_secret
    authorize = parse_qs(urlsplit(hana.person.authorize_urls[0]).query)
    assert authorize["code_challenge_method"] == ["S256"] and authorize["resource"] == [server.mcp]
    assert "Test connector" in hana.person.consent and "hana@example.com" in hana.person.consent
    assert "450 EUR" in hana.seen["search"] and "hr (docs)" in hana.seen["sources"]
    assert "450 EUR" in hana.seen["search filtered"]
    assert hana.seen["hr ids"]


def test_omar_never_sees_hr_on_any_tool(omar, hana):
    assert "300 EUR" in omar.seen["search"]  # the public passage is found
    for label, text in omar.seen.items():
        leaked = [s for s in HR_SECRETS if s in text]
        assert not leaked, f"{label} shows omar {leaked}: {text[:500]}"
    assert "hr (docs)" not in omar.seen["sources"]
    assert not omar.seen["hr ids"]
    hidden = [label.removeprefix("fetch hidden ") for label in omar.seen if label.startswith("fetch hidden")]
    assert set(hidden) == set(hana.seen["hr ids"].split())
    for item in hidden:  # an HR id reads exactly like one that does not exist
        missing = ("fetch missing chunk", "d0000000000000000:0") if ":" in item else \
            ("fetch missing", "d0000000000000000")
        assert omar.seen["fetch hidden " + item].replace(item, "ID") == omar.seen[missing[0]].replace(missing[1], "ID")


def test_tokens_expire_refresh_rotates_and_tampering_fails(hana, server):
    assert hana.statuses == {"expired": 401, "fresh": 200, "tampered": 401}
    assert "450 EUR" in hana.seen["after refresh"]  # the client refreshed by itself and went on
    old, new = hana.before_expiry, hana.after_refresh
    assert new.access_token != old.access_token and new.refresh_token != old.refresh_token
    reused = refresh(server, hana.storage.client, old.refresh_token)  # a used refresh token stops working
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    # and its reuse ends the grant: whoever replayed it, the pair issued in its place stops working too
    assert refresh(server, hana.storage.client, new.refresh_token).json()["error"] == "invalid_grant"


def test_revoking_a_token_ends_the_pair(server):
    again = asyncio.run(connect(server, "hana", tools=False))
    client = again.storage.client
    tokens = refresh(server, client, again.storage.tokens.refresh_token).json()  # a live pair, just issued
    assert probe(server, tokens["access_token"]) == 200
    with httpx.Client(timeout=30) as http:
        revoked = http.post(server.public + "/revoke", data={"token": tokens["access_token"],
                                                             "client_id": client.client_id,
                                                             "client_secret": client.client_secret})
    assert revoked.status_code == 200
    assert probe(server, tokens["access_token"]) == 401
    assert refresh(server, client, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_a_resource_other_than_this_server_is_refused(hana, server):
    client = hana.storage.client
    with httpx.Client(timeout=30) as http:
        answer = http.get(server.public + "/authorize", params={
            "response_type": "code", "client_id": client.client_id, "redirect_uri": CLIENT_REDIRECT,
            "code_challenge": "x" * 43, "code_challenge_method": "S256", "state": "s",
            "resource": "https://elsewhere.example/mcp"})
    assert answer.status_code == 302
    assert parse_qs(urlsplit(answer.headers["location"]).query)["error"] == ["invalid_target"]


def test_a_person_can_deny_and_a_consent_page_answers_once(hana, server):
    client = hana.storage.client
    authorize = server.public + "/authorize?" + urlencode({
        "response_type": "code", "client_id": client.client_id, "redirect_uri": CLIENT_REDIRECT,
        "code_challenge": "x" * 43, "code_challenge_method": "S256", "state": "s1"})
    with httpx.Client(timeout=30) as browser:
        page = browser.get(sign_in(browser, authorize, "omar", stop_at=server.public + "/oauth/callback"))
        ticket = re.search(r'name="ticket" value="([^"]+)"', page.text).group(1)
        denied = browser.post(server.public + "/oauth/consent", data={"ticket": ticket, "answer": "deny"})
        again = browser.post(server.public + "/oauth/consent", data={"ticket": ticket, "answer": "allow"})
    query = parse_qs(urlsplit(denied.headers["location"]).query)
    assert query == {"error": ["access_denied"], "state": ["s1"]}
    assert again.status_code == 400


def test_static_tokens_work_beside_oauth(server, omar):
    async def eng_bot() -> dict[str, str]:
        headers = {"Authorization": f"Bearer {STATIC['CORPUS_TEST_TOKEN_ENG']}"}
        async with create_mcp_http_client(headers=headers) as http, \
                streamable_http_client(server.mcp, http_client=http) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            return await every_tool(session)

    seen = asyncio.run(eng_bot())
    assert "300 EUR" in seen["search"]
    assert not [label for label, text in seen.items() if any(s in text for s in HR_SECRETS)]


def test_the_store_keeps_people_and_hashes_never_tokens(server, hana, omar):
    issued = [t for run in (hana, omar) for tokens in (run.storage.tokens, run.before_expiry, run.after_refresh)
              if tokens for t in (tokens.access_token, tokens.refresh_token)]
    oauth = server.folder / "store" / "oauth.sqlite"
    assert stat.S_IMODE(oauth.stat().st_mode) == 0o600
    log = QuestionLog(server.folder / "store", 90)
    deadline = time.monotonic() + 30
    while {"hana@example.com", "omar@example.com"} - {e.caller for e in log.entries()} \
            and time.monotonic() < deadline:
        time.sleep(0.5)
    callers = {e.caller for e in log.entries()}
    assert {"hana@example.com", "omar@example.com"} <= callers
    for path in server.folder.joinpath("store").glob("*.sqlite*"):
        data = path.read_bytes()
        assert not [t for t in issued if t.encode() in data], f"{path.name} holds a token in clear"
        assert STATIC["CORPUS_TEST_TOKEN_ENG"].encode() not in data
    with sqlite3.connect(oauth) as db:
        assert db.execute("SELECT count(*) FROM grants").fetchone()[0] >= 1  # omar's grant is still live


def test_a_registration_flood_neither_grows_the_store_nor_drops_a_signed_in_client(server, omar):
    registration = {"client_name": "flood", "redirect_uris": [CLIENT_REDIRECT]}
    with httpx.Client(timeout=30) as http:
        too_big = http.post(server.public + "/register", json={**registration, "client_name": "x" * 100_000})
        assert too_big.status_code == 413
        for _ in range(MAX_IDLE_CLIENTS + 20):
            assert http.post(server.public + "/register", json=registration).status_code == 201
    with sqlite3.connect(server.folder / "store" / "oauth.sqlite") as db:
        clients = {row[0] for row in db.execute("SELECT id FROM clients")}
    assert len(clients) <= MAX_IDLE_CLIENTS + 2  # the idle ones, plus those holding a live grant
    assert omar.storage.client.client_id in clients


def test_a_restart_keeps_grants_and_a_moved_server_refuses_them(server, omar):
    client = omar.storage.client
    server.stop()
    server.start(server.public)  # the same address: people stay signed in
    renewed = refresh(server, client, omar.storage.tokens.refresh_token).json()
    assert probe(server, renewed["access_token"]) == 200
    server.stop()
    server.start(server.public.replace("127.0.0.1", "localhost"))  # another resource: its tokens are not for it
    moved = refresh(server, client, renewed["refresh_token"]).json()
    assert probe(server, moved["access_token"]) == 401
