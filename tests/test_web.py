"""The web page: a real browser (Debian's chromium through Playwright) against a real `corpus serve --http`.

The corpus holds a public wiki, a wiki page whose text carries markup, and an `hr`-only source. With tokens
configured, a person signs in; an `eng` token must see nothing of the hr source on any page (the strings in
HR_SECRETS are only in it). Citations of the wiki open at a loopback web server, as a source's `url` template
makes them. Plain HTTP tests (Starlette's TestClient on the same app) cover CSRF, cookie flags, the
Content-Security-Policy and the Host check.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from connectors import load_config
from ingest.pipeline import ingest
from ingest.progress import Progress
from tests.conftest import docs_source, free_port, wait_for_port, write_config
from tests.test_access import HR, HR_SECRETS, PUBLIC

pytestmark = pytest.mark.slow  # an HTTP server subprocess and a headless browser

CHROMIUM = "/usr/bin/chromium"
TOKENS = {"eng": "eng-token-0123456789abcdef", "hr": "hr-token-0123456789abcdef"}
MARKUP = """\
Page markup notes

Our wiki renderer once let a page say <script>alert("owned")</script> and <img src=x onerror=alert(2)> in its
body. Such text must always show as text: the sanitiser review covers the wiki renderer every quarter.
"""  # plain text keeps its angle brackets (the Markdown reader drops inline HTML)
QUESTIONS = "- What is the weekly on-call stipend for engineers?\n- Is there a company softball team?\n"
HR_ONLY_QUESTION = "stipend-2026 quokka pyjamas budget"  # unanswerable, and names an hr-only file


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, embedder):
    """A config with the wiki (citations served on loopback), the hr-only source, two tokens and a question file."""
    folder = tmp_path_factory.mktemp("web")
    for name in ("wiki", "hr"):
        (folder / name).mkdir()
    (folder / "wiki" / "oncall.md").write_text(PUBLIC)
    (folder / "wiki" / "markup.txt").write_text(MARKUP)
    (folder / "wiki" / "broken.pdf").write_bytes(b"%PDF-1.4 not really")  # a failure the eng token may see
    (folder / "hr" / "stipend-2026.md").write_text(HR)
    (folder / "hr" / "broken.pdf").write_bytes(b"%PDF-1.4 not really")  # a failure it may not
    (folder / "onboarding.md").write_text("# Engineering\n\n" + QUESTIONS)
    cite_port = free_port()
    config_path = write_config(
        folder, docs_source("wiki", folder / "wiki", url=f"http://127.0.0.1:{cite_port}/{{path}}")
        + docs_source("hr", folder / "hr", access=["hr"]),
        extra='[server]\nquestion_files = ["onboarding.md"]\n'
              + "".join(f'[[server.tokens]]\nname = "{n}"\nenv = "CORPUS_TEST_TOKEN_{n.upper()}"\ngroups = ["{n}"]\n'
                        for n in TOKENS))
    config = load_config(config_path)
    ingest(config, embedder=embedder, progress=Progress(interval=999))
    return config_path, cite_port


@pytest.fixture(scope="module")
def site(corpus):
    """`corpus serve --http` on loopback, and a plain web server where the wiki's citations open."""
    config_path, cite_port = corpus
    port = free_port()
    env = {**os.environ, **{f"CORPUS_TEST_TOKEN_{n.upper()}": v for n, v in TOKENS.items()}}
    env.pop("ANTHROPIC_API_KEY", None)
    server = subprocess.Popen([sys.executable, "-m", "cli.main", "--config", str(config_path), "serve", "--http",
                               "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    files = subprocess.Popen([sys.executable, "-m", "http.server", str(cite_port), "--bind", "127.0.0.1",
                              "--directory", str(config_path.parent / "wiki")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        wait_for_port(cite_port)
        warm(f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        for proc in (server, files):
            proc.terminate()
            proc.wait(timeout=30)


def warm(site: str) -> None:
    """Sign in and open the first page once: it waits for the model and the store, which load in the background."""
    with httpx.Client(base_url=site, timeout=300) as client:
        form = client.get("/signin")
        client.post("/signin", data={"token": TOKENS["eng"], "csrf": csrf_of(form.text)})
        assert client.get("/").status_code == 200


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (`make tools` installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # as root, Chromium's sandbox cannot start; the pages come from our own loopback server
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def signed_in(browser, site: str, token: str):
    """A fresh browser context (its own cookies) signed in with this token."""
    context = browser.new_context()
    context.set_default_timeout(120_000)  # two cores shared with other test runs
    page = context.new_page()
    page.goto(f"{site}/")
    assert page.url.startswith(f"{site}/signin"), "an anonymous visitor is sent to sign in"
    page.fill("#token", token)
    page.click("button:has-text('Sign in')")
    assert page.url == f"{site}/", page.url
    return context, page


def ask(page, site: str, query: str) -> None:
    page.goto(f"{site}/")
    page.fill("#q", query)
    page.click("button:has-text('Search')")


def test_ask_and_follow_a_citation(browser, site):
    context, page = signed_in(browser, site, TOKENS["eng"])
    ask(page, site, "What is the weekly on-call stipend for engineers?")
    first = page.locator("li.hit").first
    assert "300 EUR" in first.inner_text() and "On-call handbook" in first.inner_text()
    assert page.locator(".verdict").get_attribute("class").split() == ["verdict", "likely"]
    first.locator("a.cite").click()  # the source's url template: the wiki's own web server
    page.wait_for_load_state()
    assert "/oncall.md#stipend" in page.url and not page.url.startswith(site)
    assert "300 EUR per week" in page.content()

    page.go_back()
    page.locator("li.hit").first.locator("a:has-text('Read on')").click()
    assert "/read?id=" in page.url and "300 EUR" in page.locator(".text").inner_text()
    page.click("a:has-text('Whole document')")
    assert "Escalate to the incident commander" in page.locator(".text").inner_text()

    ask(page, site, "What is the weekly on-call stipend for engineers in Zanzibar?")
    assert page.locator(".verdict").inner_text().endswith("None of the first passages names Zanzibar.")
    context.close()


def test_check_from_a_pasted_list_shows_verdicts_gaps_first(browser, site):
    context, page = signed_in(browser, site, TOKENS["eng"])
    page.goto(f"{site}/check")
    page.fill("#questions", "What is the weekly on-call stipend for engineers?\nIs there a company softball team?")
    page.click("button:has-text('Check coverage')")
    verdicts = page.locator(".outcome .badge").all_inner_texts()
    questions = page.locator(".outcome h3").all_inner_texts()
    assert [v.lower() for v in verdicts] == ["missing", "answered"], verdicts
    assert questions == ["Is there a company softball team?", "What is the weekly on-call stipend for engineers?"]
    assert "Coverage 50%" in page.locator(".coverage").inner_text()

    with page.expect_download() as download:
        page.click("button:has-text('Download as Markdown')")
    report = Path(download.value.path()).read_text()
    assert report.startswith("# Onboarding coverage: pasted questions") and "**MISSING**" in report

    page.goto(f"{site}/check")  # a configured question file
    page.select_option("select[name=configured]", "onboarding.md")
    page.click("button:has-text('Check coverage')")
    assert len(page.locator(".outcome").all()) == 2 and "onboarding.md" in page.locator(".report h2").first.inner_text()
    context.close()


def test_an_eng_token_sees_nothing_of_the_hr_source_on_any_page(browser, site):
    hr_context, hr = signed_in(browser, site, TOKENS["hr"])
    ask(hr, site, "weekly on-call stipend for engineers")
    assert "450 EUR" in hr.content()  # the hr token does see its passages
    link = hr.locator("li.hit", has_text="450 EUR").first.locator("a:has-text('Whole document')")
    hr_doc = link.get_attribute("href").split("id=")[1]
    ask(hr, site, HR_ONLY_QUESTION)  # logged as hr's unanswered question
    hr.goto(f"{site}/gaps")
    assert HR_ONLY_QUESTION in hr.content()
    hr_context.close()

    context, page = signed_in(browser, site, TOKENS["eng"])
    seen: dict[str, str] = {}

    def visit(url: str) -> None:
        page.goto(url)
        seen[url] = page.content()

    for query in ("weekly on-call stipend for engineers", "escalate to the incident commander",
                  "which rates were reviewed in 2026?"):
        ask(page, site, query)
        seen[page.url] = page.content()
        links = page.locator("li.hit a").evaluate_all("els => els.map(e => e.href)")
        for link in links:
            if link.startswith(site):
                visit(link)
    for path in ("/sources", "/gaps", "/gaps?days=90", f"/read?id={hr_doc}", f"/read?id={hr_doc}:0&around=5",
                 "/?q=stipend&source=hr"):
        visit(f"{site}{path}")
    page.goto(f"{site}/check")
    page.fill("#questions", "What is the weekly on-call stipend for engineers?\nWhich rates were reviewed in 2026?")
    page.click("button:has-text('Check coverage')")
    seen["check"] = page.content()

    assert "300 EUR" in "".join(seen.values())  # the public passage is shown
    for url, html in seen.items():
        leaked = [s for s in (*HR_SECRETS, HR_ONLY_QUESTION) if s in html]
        assert not leaked, f"{url} shows the eng token {leaked}"
    # the hr document reads as one that does not exist
    assert "no document or chunk with id" in seen[f"{site}/read?id={hr_doc}"]
    context.close()


def test_markup_in_a_document_shows_as_text(browser, site):
    context, page = signed_in(browser, site, TOKENS["eng"])
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    ask(page, site, "sanitiser review of the wiki renderer")
    hit = page.locator("li.hit").first
    assert '<script>alert("owned")</script>' in hit.locator(".text").inner_text()
    hit.locator("a:has-text('Whole document')").click()
    assert "<img src=x onerror=alert(2)>" in page.locator(".text").inner_text()
    assert page.evaluate("document.scripts.length") == 0 and page.evaluate("document.images.length") == 0
    assert not dialogs
    context.close()


# -- plain HTTP: the app in process, on the same store --------------------------------------------------------

@pytest.fixture(scope="module")
def client_for(corpus, embedder):
    """A TestClient over the web app as `corpus serve --http` mounts it, with tokens or open."""
    from server.http import StaticTokens, transport_security
    from server.search import Searcher
    from server.web import web_app

    config = load_config(corpus[0])
    searcher = Searcher(config, embedder)
    verifier = StaticTokens({value: (name, (name,)) for name, value in TOKENS.items()})

    def make(tokens: bool = True, base: str = "http://127.0.0.1:8765") -> TestClient:
        app = web_app(config, lambda: searcher, verifier if tokens else None, transport_security(config.server,
                                                                                                  "127.0.0.1"))
        return TestClient(app, base_url=base, follow_redirects=False)

    yield make
    searcher.replica.close()


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_every_page_has_a_csp_without_script_and_no_caching(client_for):
    client = client_for(tokens=False)
    for path in ("/", "/?q=on-call+stipend", "/check", "/gaps", "/sources", "/static/web.css"):
        response = client.get(path)
        assert response.status_code == 200, path
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp and "unsafe-inline" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
    assert client.get("/").headers["cache-control"] == "no-store"
    assert "<script" not in client.get("/?q=page+markup+notes").text.replace("&lt;script", "")


def test_session_cookie_flags_and_secure_behind_tls(client_for):
    plain = client_for().get("/signin").headers["set-cookie"]
    assert "HttpOnly" in plain and "SameSite=strict" in plain and "Secure" not in plain
    tls = client_for(base="https://127.0.0.1:8765").get("/signin").headers["set-cookie"]
    assert "Secure" in tls and "HttpOnly" in tls
    assert TOKENS["eng"] not in tls


def test_forms_need_the_csrf_token(client_for):
    client = client_for()
    page = client.get("/signin")
    assert client.post("/signin", data={"token": TOKENS["eng"]}).status_code == 403  # no CSRF token
    assert client.post("/signin", data={"token": TOKENS["eng"], "csrf": "forged"}).status_code == 403
    signed = client.post("/signin", data={"token": TOKENS["eng"], "csrf": csrf_of(page.text)})
    assert signed.status_code == 303
    home = client.get("/")
    assert home.status_code == 200 and "Signed in as eng" in home.text
    # the session changed at sign-in: the token of the form before it is no longer good
    assert client.post("/check", data={"questions": "Is there a softball team?", "csrf": csrf_of(page.text)},
                       ).status_code == 403
    assert client.post("/check", data={"questions": "Is there a softball team?"}).status_code == 403
    checked = client.post("/check", data={"questions": "Is there a softball team?", "csrf": csrf_of(home.text)})
    assert checked.status_code == 200 and "softball" in checked.text
    assert client.post("/signout", data={}).status_code == 403
    assert client.post("/signout", data={"csrf": csrf_of(home.text)}).status_code == 303
    assert client.get("/").status_code == 303  # signed out: back to the sign-in form


def test_a_wrong_token_a_forged_cookie_and_a_foreign_host_get_nothing(client_for):
    client = client_for()
    page = client.get("/signin")
    wrong = client.post("/signin", data={"token": "not-a-token-at-all-000", "csrf": csrf_of(page.text)})
    assert wrong.status_code == 401 and "not valid" in wrong.text
    for path in ("/?q=stipend", "/sources", "/gaps", "/check", "/read?id=d0"):
        assert client.get(path).headers["location"].startswith("/signin?next=")
    forged = client_for()
    forged.cookies.set("corpus_session", page.cookies.get("corpus_session", "x").split(".")[0] + ".forged")
    assert forged.get("/sources").status_code == 303
    assert client.get("/", headers={"host": "evil.example:8765"}).status_code == 421
    assert client.post("/signin", headers={"origin": "http://evil.example"}, data={}).status_code == 403
    # after sign-in, only a path on this site
    signed = client.post("/signin?next=//evil.example/", data={"token": TOKENS["eng"], "csrf": csrf_of(page.text)})
    assert signed.headers["location"] == "/"


def test_open_on_loopback_without_tokens(client_for):
    client = client_for(tokens=False)
    found = client.get("/", params={"q": "weekly on-call stipend", "source": "hr"})
    assert found.status_code == 200 and "450 EUR" in found.text  # no tokens: the local user reads everything
    assert client.get("/signin").status_code == 303
    bad = client.get("/", params={"q": "stipend", "source": "nope"})
    assert bad.status_code == 400 and "unknown source" in bad.text



def test_an_uploaded_question_file_is_checked_and_a_bad_one_named(client_for):
    client = client_for(tokens=False)
    csrf = csrf_of(client.get("/check").text)
    yaml = "Engineering:\n  - What is the weekly on-call stipend for engineers?\n"
    checked = client.post("/check", data={"csrf": csrf},
                          files={"upload": ("onboarding.yaml", yaml.encode(), "text/yaml")})
    assert checked.status_code == 200 and "Onboarding coverage: onboarding.yaml" in checked.text
    assert "Engineering" in checked.text and "1 answered" in checked.text
    bad = client.post("/check", data={"csrf": csrf}, files={"upload": ("q.yaml", b"- [unclosed", "text/yaml")})
    assert bad.status_code == 400 and "q.yaml: invalid YAML" in bad.text


def test_a_missing_question_file_stops_the_server_at_start(tmp_path):
    from mcp.server.transport_security import TransportSecuritySettings

    from corpus.errors import ConfigError
    from server.web import web_app

    (tmp_path / "docs").mkdir()
    config = load_config(write_config(tmp_path, docs_source("docs", tmp_path / "docs"),
                                      extra='[server]\nquestion_files = ["onboarding/nope.md"]\n'))
    with pytest.raises(ConfigError, match="nope.md"):
        web_app(config, lambda: None, None, TransportSecuritySettings())
