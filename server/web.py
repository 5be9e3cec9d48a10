"""The web page for employees: ask the corpus, read on, check onboarding coverage, see the gaps and the sources.

`corpus serve --http` mounts it beside /mcp, on the same searcher (one model, one store reader) and the same
access rules: open on loopback without tokens; with ``[[server.tokens]]``, a person signs in with a token, and with
``[server.oidc]`` through the organisation's sign-in provider; every page then shows only what that token's or
person's groups may read, exactly as their MCP calls would. Pages are rendered on
the server (Jinja2, autoescaped) and carry no script at all; every form is plain HTML, so search works without
JavaScript and the Content-Security-Policy allows none.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

import anyio
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.applications import Starlette
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corpus.claude import Claude
from corpus.config import Config
from corpus.errors import ConfigError, CorpusError
from ingest.status import status
from server.asked import LOCAL, Asker
from server.check import SESSION_ROOM, check
from server.check_report import ORDER, clip, signals, to_markdown
from server.hits import dated
from server.http import StaticTokens
from server.oidc import Logins, Person, browser_cookie
from server.questions import Question, load_questions, questions_from_text
from server.search import MAX_QUERY_CHARS, Searcher
from server.web_gaps import themes
from server.web_session import COOKIE, LIFETIME, Sessions, Visitor
from store.filters import Filters

HERE = Path(__file__).parent
HITS = 10  # passages a search shows
MAX_QUESTIONS = 100  # per check from the page: a long onboarding list, a few seconds of searching
MAX_UPLOAD = 256 * 1024  # bytes of a question file or pasted list
GAP_DAYS = (7, 30, 90)
SHOWN_THEMES = 100
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; "
       "frame-ancestors 'none'")
HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"DENY"),
           (b"cross-origin-opener-policy", b"same-origin")]
FORMATS = {"lines": ".md", "markdown": ".md", "yaml": ".yaml", "toml": ".toml"}
VERDICTS = {
    "likely": "The corpus likely answers this: start with the first passage.",
    "possible": "The corpus may answer this: check that a passage really does.",
    "unlikely": "The corpus probably does not answer this. These are the closest passages it has.",
}
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\S", re.M)

Handler = Callable[[Request, Visitor, FormData | None], Awaitable[Response]]


def web_app(config: Config, searcher: Callable[[], Searcher], verifier: StaticTokens | None,
            security: TransportSecuritySettings, logins: Logins | None = None) -> Starlette:
    """The pages, for mounting at "/". ``searcher`` waits for the shared one to be ready (the model loads in the
    background); ``verifier`` checks sign-in tokens, ``logins`` signs people in through the provider (both None:
    open to loopback). Whoever builds the server mounts ``logins.routes()``, the provider's way back."""
    web = Web(config, searcher, verifier, logins)
    routes = [
        Route("/", web.page(web.ask)),
        Route("/read", web.page(web.read)),
        Route("/check", web.page(web.check), methods=["GET", "POST"]),
        Route("/gaps", web.page(web.gaps)),
        Route("/sources", web.page(web.sources)),
        Route("/signin", web.page(web.signin, public=True), methods=["GET", "POST"]),
        Route("/signout", web.page(web.signout, public=True), methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static")),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(Guard, security=security)
    return app


class Guard:
    """Every response of the page: the Host and Origin checks of /mcp first, then the security headers."""

    def __init__(self, app: ASGIApp, security: TransportSecuritySettings):
        self.app = app
        self.checks = TransportSecurityMiddleware(security)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        refused = await self.checks.validate_request(Request(scope))
        await (refused or self.app)(scope, receive, secured)


@dataclass(frozen=True)
class Choice:
    """What the ask form holds, as the page shows it back."""

    q: str = ""
    source: str = ""
    kind: str = ""
    person: str = ""
    after: str = ""
    before: str = ""

    @property
    def filtered(self) -> bool:
        return any((self.source, self.kind, self.person, self.after, self.before))

    def filters(self, groups: tuple[str, ...] | None) -> Filters:
        people = tuple(p.strip() for p in self.person.split(",") if p.strip())
        return Filters(kinds=(self.kind,) if self.kind else (), sources=(self.source,) if self.source else (),
                       people=people, after=_day("from", self.after), before=_day("before", self.before),
                       groups=groups)


class Web:
    def __init__(self, config: Config, searcher: Callable[[], Searcher], verifier: StaticTokens | None,
                 logins: Logins | None = None):
        self.config = config
        self.searcher = searcher
        self.verifier = verifier
        self.logins = logins
        tokens = {} if verifier is None else dict(verifier.tokens.values())
        self.sessions = Sessions(None if verifier is None and logins is None else tokens)
        self.provider = None if logins is None else urlsplit(logins.settings.issuer).netloc
        self.question_files = _question_files(config)
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True,
                               undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.env.globals.update(dated=dated, clip=clip, signals=signals, outside=_outside, verdicts=VERDICTS,
                                max_query=MAX_QUERY_CHARS)

    # -- the frame every page goes through -------------------------------------------------------------

    def page(self, handler: Handler, public: bool = False) -> Callable[[Request], Awaitable[Response]]:
        """Session, sign-in and CSRF around a page; ``public`` pages are open before signing in."""

        async def endpoint(request: Request) -> Response:
            visitor = self.sessions.visitor(request.cookies.get(COOKIE))
            form = None
            if request.method == "POST":
                form = await request.form(max_files=1, max_fields=20, max_part_size=MAX_UPLOAD)
                if not self.sessions.csrf_ok(visitor, str(form.get("csrf", ""))):
                    return self._finish(request, visitor, self.render(
                        request, visitor, "error.html", 403, title="Form expired",
                        message="This form has expired or did not come from this page. Go back, reload the page "
                                "and send it again."))
            if not public and not self.sessions.open and not visitor.signed_in:
                back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return self._finish(request, visitor, RedirectResponse(f"/signin?next={quote(back)}", 303))
            request.state.visitor = visitor
            try:
                response = await handler(request, visitor, form)
            except (CorpusError, ToolError) as exc:  # the store cannot be read: say so, as the MCP tools do
                response = self.render(request, visitor, "error.html", 503, title="The corpus cannot answer now",
                                       message=str(exc))
            return self._finish(request, request.state.visitor, response)

        return endpoint

    def _finish(self, request: Request, visitor: Visitor, response: Response) -> Response:
        if visitor.fresh:
            response.set_cookie(COOKIE, self.sessions.cookie(visitor), max_age=LIFETIME, path="/", httponly=True,
                                samesite="strict", secure=request.url.scheme == "https")
        response.headers["cache-control"] = "no-store"  # pages show what a token may read: never from a cache
        return response

    def render(self, request: Request, visitor: Visitor, template: str, status_code: int = 200,
               **context: object) -> HTMLResponse:
        page = self.env.get_template(template).render(
            visitor=visitor, csrf=self.sessions.csrf(visitor), open=self.sessions.open, here=request.url.path,
            provider=self.provider, tokens=self.verifier is not None, **context)
        return HTMLResponse(page, status_code)

    def _asker(self, visitor: Visitor) -> Asker:
        """Who asked, for the question log: the token's name (never its value), or the local user."""
        return Asker(caller=visitor.name or LOCAL, session=self.sessions.log_id(visitor))

    async def _ready(self) -> Searcher:
        return await anyio.to_thread.run_sync(self.searcher)

    # -- pages -------------------------------------------------------------------------------------------

    async def ask(self, request: Request, visitor: Visitor, _: FormData | None) -> Response:
        params = request.query_params
        choice = Choice(**{key: params.get(key, "").strip() for key in Choice.__dataclass_fields__})
        found, error = None, None
        try:
            searcher = await self._ready()
            known = await anyio.to_thread.run_sync(searcher.sources, visitor.groups)
            if choice.q:
                filters = choice.filters(visitor.groups)
                found = await anyio.to_thread.run_sync(
                    lambda: searcher.find(choice.q, limit=HITS, filters=filters, asker=self._asker(visitor)))
        except (CorpusError, ToolError) as exc:
            known, error = [], str(exc)
        return self.render(request, visitor, "ask.html", 400 if error and choice.q else 200, choice=choice,
                           found=found, error=error, sources=known, kinds=sorted({s.kind for s in known}))

    async def read(self, request: Request, visitor: Visitor, _: FormData | None) -> Response:
        params = request.query_params
        item_id = params.get("id", "")
        page, around = _number(params.get("page"), 1, 1, 10_000), _number(params.get("around"), 1, 0, 5)
        try:
            searcher = await self._ready()
            item = await anyio.to_thread.run_sync(lambda: searcher.fetch(
                item_id, filters=Filters(groups=visitor.groups), page=page, neighbours=around))
        except (CorpusError, ToolError) as exc:
            return self.render(request, visitor, "error.html", 404, title="Nothing to read", message=str(exc))
        searcher.asked.fetched(self._asker(visitor), item_id)
        return self.render(request, visitor, "read.html", item=item, around=around, chunk=":" in item_id)

    async def check(self, request: Request, visitor: Visitor, form: FormData | None) -> Response:
        files = list(self.question_files)
        if form is None:
            return self.render(request, visitor, "check.html", files=files, result=None, error=None, text="",
                               format="lines", chosen="")
        try:
            text, fmt, chosen, label = await self._question_text(form)
            questions = _questions(text, fmt, label) if not chosen else self.question_files[chosen]
            if len(questions) > MAX_QUESTIONS:
                raise CorpusError(f"{label}: {len(questions)} questions; a check from this page takes at most "
                                  f"{MAX_QUESTIONS}: split the list")
            searcher = await self._ready()
            filters = Filters(groups=visitor.groups)
            result = await anyio.to_thread.run_sync(lambda: check(
                searcher, questions, Claude(self.config.claude), room=SESSION_ROOM, filters=filters,
                asker=self._asker(visitor)))
        except (CorpusError, ToolError) as exc:
            return self.render(request, visitor, "check.html", 400, files=files, result=None, error=str(exc),
                               text=str(form.get("questions", "")), format=str(form.get("format", "lines")),
                               chosen=str(form.get("configured", "")))
        title = f"Onboarding coverage: {label}"
        if form.get("download"):
            return Response(to_markdown(result, title), media_type="text/markdown; charset=utf-8",
                            headers={"content-disposition": 'attachment; filename="coverage.md"'})
        ordered = sorted(result.outcomes, key=lambda o: ORDER[o.verdict])
        return self.render(request, visitor, "check.html", files=files, result=result, ordered=ordered, title=title,
                           error=None, text=text, format=fmt, chosen=chosen)

    async def _question_text(self, form: FormData) -> tuple[str, str, str, str]:
        """(text, format, configured file, label) from an upload, a configured file or the pasted text."""
        upload = form.get("upload")
        if isinstance(upload, UploadFile) and upload.filename:
            data = await upload.read(MAX_UPLOAD + 1)
            name = Path(upload.filename).name
            if len(data) > MAX_UPLOAD:
                raise CorpusError(f"{name}: larger than {MAX_UPLOAD // 1024} kB; a question file is a few kB")
            fmt = next((f for f, suffix in FORMATS.items() if f != "lines" and Path(name).suffix.lower() in
                        (suffix, ".yml", ".markdown", ".txt")), None)
            if fmt is None:
                raise CorpusError(f"{name}: questions must be a .md, .yaml or .toml file")
            try:
                return data.decode("utf-8-sig"), fmt, "", name
            except UnicodeDecodeError:
                raise CorpusError(f"{name}: not UTF-8 text") from None
        chosen = str(form.get("configured", ""))
        if chosen:
            if chosen not in self.question_files:
                raise CorpusError(f"no question file {chosen[:80]!r} is configured")
            return "", "", chosen, chosen
        text = str(form.get("questions", ""))
        if len(text.encode()) > MAX_UPLOAD:
            raise CorpusError(f"the pasted questions are larger than {MAX_UPLOAD // 1024} kB")
        fmt = str(form.get("format", "lines"))
        if fmt not in FORMATS:
            raise CorpusError(f"unknown format {fmt[:40]!r}; choose one of {', '.join(FORMATS)}")
        return text, fmt, "", "pasted questions"

    async def gaps(self, request: Request, visitor: Visitor, _: FormData | None) -> Response:
        days = _number(request.query_params.get("days"), 30, 1, 3650)
        searcher = await self._ready()
        log = searcher.asked.log
        entries = [] if log is None else await anyio.to_thread.run_sync(
            log.entries, datetime.now(UTC) - timedelta(days=days))
        seen = [e for e in entries if self._may_see(visitor, e.caller)]
        found = await anyio.to_thread.run_sync(themes, searcher, seen)
        return self.render(request, visitor, "gaps.html", days=days, choices=GAP_DAYS, logging=log is not None,
                           themes=found[:SHOWN_THEMES])

    def _may_see(self, visitor: Visitor, caller: str) -> bool:
        """A question may hold what its asker could read: with tokens or sign-in, a person sees the questions of
        callers who could read no more than they can (their own included); the local user's only on an open page.
        A person's groups are those of their last sign-in since the server started."""
        if visitor.groups is None:
            return True
        theirs = self.sessions.groups.get(caller)
        if theirs is None and self.logins is not None:
            theirs = self.logins.groups_of(caller)
        return caller == visitor.name or (theirs is not None and set(theirs) <= set(visitor.groups))

    async def sources(self, request: Request, visitor: Visitor, _: FormData | None) -> Response:
        searcher = await self._ready()
        known = await anyio.to_thread.run_sync(searcher.sources, visitor.groups)
        state = await anyio.to_thread.run_sync(status, self.config)
        failing = {s.name for s in known if s.failed_items}  # list_sources counts failures only of open sources
        failures = [f for f in state.failures if f.source in failing]
        run = state.last_run
        last = f"{_when(run.started)}, " + ("finished" if run.finished else "did not finish") if run else None
        return self.render(request, visitor, "sources.html", sources=known, failures=failures, last_run=last)

    async def signin(self, request: Request, visitor: Visitor, form: FormData | None) -> Response:
        target = _local(request.query_params.get("next", "/"))
        if self.sessions.open or visitor.signed_in:
            return RedirectResponse(target, 303)
        if form is None:
            return self.render(request, visitor, "signin.html", target=target, error=None)
        if self.logins is not None and form.get("provider"):
            # a page that moves on rather than a redirect: the CSP's form-action allows no other site
            browser = secrets.token_urlsafe(16)
            url = await self.logins.begin(self._welcome(request, target), browser=browser)
            response = self.render(request, visitor, "leaving.html", url=url)
            browser_cookie(response, browser, secure=request.url.scheme == "https")
            return response
        if self.verifier is None:
            return self.render(request, visitor, "signin.html", 400, target=target,
                               error=f"Sign in with {self.provider}.")
        access = await self.verifier.verify_token(str(form.get("token", "")).strip())
        if access is None:
            return self.render(request, visitor, "signin.html", 401, target=target,
                               error="That token is not valid. Check it and try again.")
        request.state.visitor = self.sessions.signed_in(visitor, access.client_id)
        return RedirectResponse(target, 303)

    def _welcome(self, request: Request, target: str) -> Callable[[Person], Awaitable[Response]]:
        """What the provider's way back answers: the session cookie naming the person, and on to ``target``.

        A page that moves on by itself rather than a redirect: the browser arrives from the provider's site, and a
        SameSite=Strict cookie is not sent on a redirect that started there; from our own page it is.
        """

        async def welcome(person: Person) -> Response:
            visitor = self.sessions.person_signed_in(person.label, person.groups)
            response = self._finish(request, visitor, self.render(request, visitor, "welcome.html", target=target))
            response.headers.update({name.decode(): value.decode() for name, value in HEADERS})
            return response

        return welcome

    async def signout(self, request: Request, visitor: Visitor, _: FormData | None) -> Response:
        request.state.visitor = self.sessions.signed_out()
        return RedirectResponse("/signin" if not self.sessions.open else "/", 303)


def _questions(text: str, fmt: str, label: str) -> list[Question]:
    """Pasted questions: one a line, or a Markdown/YAML/TOML question file's text."""
    if fmt == "lines" and not _LIST_ITEM.search(text):
        questions = [Question(line.strip()) for line in text.splitlines() if line.strip()]
        if questions:
            return questions
    return questions_from_text(text, FORMATS[fmt], label)


def _question_files(config: Config) -> dict[str, list[Question]]:
    """The configured question files by file name, read at start: a missing or malformed one fails fast."""
    files: dict[str, list[Question]] = {}
    for path in config.server.question_files:
        path = path if path.is_absolute() else config.root / path
        if path.name in files:
            raise ConfigError(f"server.question_files: two files are called {path.name}; rename one")
        files[path.name] = load_questions(path)
    return files


def _outside(uri: str) -> bool:
    """A citation a browser can open from this page (a file:// link it refuses; anything else is not a link)."""
    return urlsplit(uri).scheme in ("http", "https")


def _local(target: str) -> str:
    """Where to go after signing in: a path on this site only, never another site."""
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/"


def _day(name: str, value: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise CorpusError(f"{name} must be a date like 2026-01-31, not {value[:40]!r}") from None


def _number(value: str | None, default: int, low: int, high: int) -> int:
    try:
        return min(max(int(value), low), high) if value else default
    except ValueError:
        return default


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")
