"""The web page with single sign-on: a real `corpus serve --http` with [server.oidc] against a real OpenID Connect
provider (npm oidc-provider on loopback, tests/oidc_idp.py), driven by a real browser (Debian's chromium through
Playwright) and by httpx following the forms.

hana (groups hr, staff) reads the hr-only source; omar (eng, staff) must see nothing of it on any page; ana has no
groups at the provider and gets `staff` from a [[server.groups]] rule. A static token still signs in beside them.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from connectors import load_config
from ingest.pipeline import ingest
from ingest.progress import Progress
from server.oidc import CALLBACK_PATH
from store.questionlog import QuestionLog
from tests import test_web
from tests.conftest import docs_source, free_port, wait_for_port, write_config
from tests.oidc_idp import USERS, running_idp, sign_in
from tests.test_access import HR, HR_SECRETS, PUBLIC
from tests.test_web import HR_ONLY_QUESTION, csrf_of

pytestmark = pytest.mark.slow  # an HTTP server and an identity provider as subprocesses, a headless browser

PEOPLE = {**USERS, "ana": {"email": "ana@example.com", "name": "Ana Ops", "groups": []}}
TOKEN = "eng-token-0123456789abcdef"
browser = test_web.browser  # the fixture: Debian's chromium through Playwright
STAFF_QUESTION = "Is there a company softball team?"  # unanswered, asked by ana (staff): every staff member may see it


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, embedder):
    folder = tmp_path_factory.mktemp("web_sso")
    for name in ("wiki", "hr"):
        (folder / name).mkdir()
    (folder / "wiki" / "oncall.md").write_text(PUBLIC)
    (folder / "hr" / "stipend-2026.md").write_text(HR)
    sources = docs_source("wiki", folder / "wiki") + docs_source("hr", folder / "hr", access=["hr"])
    ingest(load_config(write_config(folder, sources)), embedder=embedder, progress=Progress(interval=999))
    return folder, sources


@pytest.fixture(scope="module")
def site(corpus) -> Iterator[str]:
    """`corpus serve --http` signing people in at the provider, with one static token beside it."""
    folder, sources = corpus
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    with running_idp([public_url + CALLBACK_PATH], users=PEOPLE) as idp:
        config_path = write_config(folder, sources, extra=(
            f'[server]\npublic_url = "{public_url}"\n'
            f'[server.oidc]\nissuer = "{idp.issuer}"\nclient_id = "{idp.client_id}"\n'
            'client_secret_env = "CORPUS_TEST_OIDC_SECRET"\n'
            '[[server.groups]]\nemails = ["ana@example.com"]\ngroups = ["staff"]\n'
            '[[server.tokens]]\nname = "eng"\nenv = "CORPUS_TEST_TOKEN_ENG"\ngroups = ["eng"]\n'))
        env = {**os.environ, "CORPUS_TEST_OIDC_SECRET": idp.client_secret, "CORPUS_TEST_TOKEN_ENG": TOKEN}
        env.pop("ANTHROPIC_API_KEY", None)
        with open(folder / "serve.log", "wb") as log:
            server = subprocess.Popen([sys.executable, "-m", "cli.main", "--config", str(config_path), "serve",
                                       "--http", "--port", str(port)], env=env, stdout=log, stderr=log)
        try:
            wait_for_port(port)
            with person(public_url, "ana") as ana:  # the first page waits for the model and the store
                assert ana.get("/").status_code == 200
            yield public_url
        finally:
            server.terminate()
            server.wait(timeout=30)


@contextmanager
def person(site: str, user: str, then: str = "/") -> Iterator[httpx.Client]:
    """A client signed in as ``user``: the page's sign-in form, the provider's pages, back to the page."""
    with httpx.Client(base_url=site, timeout=300) as client:
        form = client.get(f"/signin?next={then}")
        started = client.post(f"/signin?next={then}", data={"csrf": csrf_of(form.text), "provider": "1"})
        callback = sign_in(client, onward(started), user, stop_at=site + CALLBACK_PATH)
        welcome = client.get(callback)
        assert welcome.status_code == 200, welcome.text
        assert f'content="0;url={then}"' in welcome.text and f"Signed in as {PEOPLE[user]['email']}" in welcome.text
        yield client


def onward(page: httpx.Response) -> str:
    """Where a page that moves on by itself (a meta refresh: the pages carry no script) sends the browser."""
    assert page.status_code == 200, page.text
    return html.unescape(re.search(r'<meta http-equiv="refresh" content="0;url=([^"]+)">', page.text).group(1))


def _read_ids(page: str) -> set[str]:
    return set(re.findall(r'href="/read\?id=([^"&]+)', page))


def test_a_person_signs_in_with_the_browser_and_reads_hr_then_signs_out(browser, site):
    context = browser.new_context()
    context.set_default_timeout(120_000)  # two cores shared with other test runs
    page = context.new_page()
    page.goto(f"{site}/sources")
    assert page.url.startswith(f"{site}/signin?next=")
    assert page.locator("#token").count() == 1  # the token form stays beside the provider's
    page.click("button:has-text('Sign in with 127.0.0.1:')")
    page.fill("input[name=login]", "hana")  # the provider's own pages
    page.fill("input[name=password]", "any password")
    page.click("button:has-text('Sign-in')")
    page.click("button:has-text('Continue')")
    page.wait_for_url(f"{site}/sources")  # the SameSite=Strict cookie arrives on the way back
    assert "Signed in as hana@example.com" in page.content()
    assert "hr" in page.locator("body").inner_text()
    page.goto(f"{site}/")
    page.fill("#q", "weekly on-call stipend for engineers")
    page.click("button:has-text('Search')")
    assert "450 EUR" in page.content()
    assert page.evaluate("document.scripts.length") == 0
    page.click("button:has-text('Sign out')")
    page.goto(f"{site}/")
    assert page.url.startswith(f"{site}/signin"), "signed out: back to the sign-in page"
    context.close()


def test_omar_sees_nothing_of_hr_on_any_page(site, corpus):
    with person(site, "hana") as hana:
        found = hana.get("/", params={"q": "weekly on-call stipend for engineers"}).text
        assert "450 EUR" in found
        hr_ids = _read_ids(found)
        hana.get("/", params={"q": HR_ONLY_QUESTION})  # hana's unanswered question names an hr-only file
    with person(site, "ana") as ana:
        ana.get("/", params={"q": STAFF_QUESTION})

    seen: dict[str, str] = {}
    with person(site, "omar") as omar:
        for query in ("weekly on-call stipend for engineers", "which rates were reviewed in 2026?",
                      "escalate to the incident commander"):
            seen[query] = omar.get("/", params={"q": query}).text
        for item in hr_ids | _read_ids(seen["weekly on-call stipend for engineers"]):
            seen[item] = omar.get("/read", params={"id": item}).text
        for path in ("/sources", "/gaps?days=90", "/?q=stipend&source=hr"):
            seen[path] = omar.get(path).text
        checked = omar.post("/check", data={"csrf": csrf_of(seen["/sources"]),
                                            "questions": "Which rates were reviewed in 2026?"})
        seen["check"] = checked.text
    assert "300 EUR" in seen["weekly on-call stipend for engineers"]  # the public passage is there
    for where, page in seen.items():
        leaked = [s for s in (*HR_SECRETS, HR_ONLY_QUESTION) if s in page]
        assert not leaked, f"{where} shows omar {leaked}"
    assert any("no document or chunk with id" in seen[item] for item in hr_ids)
    assert STAFF_QUESTION in seen["/gaps?days=90"]  # ana's groups are within omar's

    with person(site, "hana") as hana:
        gaps = hana.get("/gaps?days=90").text
    assert HR_ONLY_QUESTION in gaps and STAFF_QUESTION in gaps

    since = datetime.now(UTC) - timedelta(hours=1)
    callers = {e.caller for e in QuestionLog(corpus[0] / "store").entries(since)}
    assert {"hana@example.com", "ana@example.com", "omar@example.com"} <= callers


def test_sign_out_ends_the_session_and_a_token_still_signs_in(site):
    with person(site, "omar", then="/sources") as omar:
        page = omar.get("/sources")
        assert page.status_code == 200 and "Signed in as omar@example.com" in page.text
        assert omar.post("/signout", data={"csrf": csrf_of(page.text)}).status_code == 303
        assert omar.get("/sources").status_code == 303  # back to the sign-in page
    with httpx.Client(base_url=site, timeout=300) as client:
        form = client.get("/signin")
        assert "Sign in with 127.0.0.1:" in form.text
        assert client.post("/signin", data={"token": TOKEN, "csrf": csrf_of(form.text)}).status_code == 303
        assert "Signed in as eng" in client.get("/").text


def test_a_refusal_at_the_provider_is_one_line(site):
    with httpx.Client(base_url=site, timeout=60) as client:
        form = client.get("/signin")
        started = client.post("/signin", data={"csrf": csrf_of(form.text), "provider": "1"})
        state = httpx.URL(onward(started)).params["state"]
        refused = client.get(CALLBACK_PATH, params={"error": "access_denied", "state": state,
                                                    "error_description": "not\nallowed"})
        assert refused.status_code == 400 and "The sign-in provider refused: access_denied: not allowed" in refused.text
        assert client.get("/").status_code == 303
