"""A real OpenID Connect provider for the OAuth tests: the npm `oidc-provider` run by node on loopback.

`running_idp` starts tests/oidc_idp/provider.mjs with one confidential client and the given users; `sign_in` plays
the browser through the IdP's own sign-in and consent pages (any password is accepted for a known login).
"""

from __future__ import annotations

import json
import secrets
import selectors
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

IDP_DIR = Path(__file__).parent / "oidc_idp"
START_SECONDS = 30
MAX_HOPS = 20

USERS = {
    "hana": {"email": "hana@example.com", "name": "Hana HR", "groups": ["hr", "staff"]},
    "omar": {"email": "omar@example.com", "name": "Omar Eng", "groups": ["eng", "staff"]},
}


@dataclass
class Idp:
    issuer: str
    client_id: str
    client_secret: str


@contextmanager
def running_idp(redirect_uris: list[str], users: dict[str, dict] | None = None,
                client_secret: str | None = None) -> Iterator[Idp]:
    """Starts the npm `oidc-provider` on a free loopback port (node tests/oidc_idp/provider.mjs), one confidential
    client (client_secret_basic, redirect_uris as given, PKCE allowed; a random secret unless given), and users;
    stops it on exit."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the test OpenID Connect provider (npm oidc-provider) needs it")
    if not (IDP_DIR / "node_modules" / "oidc-provider").is_dir():
        raise RuntimeError(f"{IDP_DIR}/node_modules is missing: run `make tools` (npm ci in tests/oidc_idp)")
    idp_client = ("corpus-test", client_secret or secrets.token_urlsafe(24))
    # --name=value: a value starting with "-" (a random secret, 1 in 64) is an error to node's parseArgs otherwise
    command = [node, str(IDP_DIR / "provider.mjs"), "--port=0", f"--client-id={idp_client[0]}",
               f"--client-secret={idp_client[1]}", f"--users={json.dumps(USERS if users is None else users)}",
               *(f"--redirect-uri={uri}" for uri in redirect_uris)]
    with tempfile.TemporaryFile(mode="w+") as stderr:
        # stdin stays open for the provider's life: it exits when stdin closes, even if this process is killed.
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True)
        try:
            issuer = _ready_issuer(process, stderr)
            yield Idp(issuer=issuer, client_id=idp_client[0], client_secret=idp_client[1])
        finally:
            _stop(process)


def _ready_issuer(process: subprocess.Popen, stderr) -> str:
    """Waits for the provider's one ready line and returns its issuer; a provider that dies or hangs fails loudly."""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        line = process.stdout.readline() if selector.select(START_SECONDS) else ""
    if not line:
        process.kill()
        process.wait()
        stderr.seek(0)
        raise RuntimeError(f"tests/oidc_idp/provider.mjs did not start (exit {process.returncode}): {stderr.read()}")
    return json.loads(line)["issuer"]


def _stop(process: subprocess.Popen) -> None:
    process.stdin.close()
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    process.stdout.close()


def sign_in(client: httpx.Client | None, url: str, user: str, stop_at: str) -> str:
    """Drives a browser's part: GETs `url`, follows redirects, fills the IdP's login form as `user`, submits every
    other form on the way (the IdP's consent, corpus's own consent page: their first button), and returns the first
    redirect Location that starts with `stop_at` (not requested)."""
    if client is None:
        with httpx.Client() as own:
            return sign_in(own, url, user, stop_at)
    response = client.get(url, follow_redirects=False)
    for _ in range(MAX_HOPS):
        if response.is_redirect:
            location = urljoin(str(response.url), response.headers["location"])
            if location.startswith(stop_at):
                return location
            response = client.get(location, follow_redirects=False)
            continue
        form = _Form.parse(response)
        if form is None:
            raise AssertionError(f"sign_in: {response.request.method} {response.url} answered {response.status_code} "
                                 f"with neither a redirect nor a form: {response.text[:500]}")
        if form.fields.get("prompt") == "login":
            form.fields.update(login=user, password="any password")
        response = client.post(urljoin(str(response.url), form.action), data=form.fields, follow_redirects=False)
    raise AssertionError(f"sign_in: no redirect to {stop_at} after {MAX_HOPS} steps")


class _Form(HTMLParser):
    """The first POST form of a page, with its hidden fields and its first named submit button as pressed: enough
    for oidc-provider's login and consent pages and corpus's own consent page (its first button allows)."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._inside = False
        self._pressed = False

    @classmethod
    def parse(cls, response: httpx.Response) -> _Form | None:
        if response.status_code != 200 or "html" not in response.headers.get("content-type", ""):
            return None
        form = cls()
        form.feed(response.text)
        return form if form.action is not None else None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form" and self.action is None and (attributes.get("method") or "").lower() == "post":
            self.action, self._inside = attributes.get("action") or "", True
            return
        name = attributes.get("name")
        if not self._inside or not name:
            return
        if tag == "input" and attributes.get("type") == "hidden":
            self.fields[name] = attributes.get("value") or ""
        elif tag == "button" and (attributes.get("type") or "submit") == "submit" and not self._pressed:
            self.fields[name] = attributes.get("value") or ""  # a browser sends the button it pressed
            self._pressed = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False
