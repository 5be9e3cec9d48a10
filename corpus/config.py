"""corpus.toml: read once at the entry point, validated before any work starts."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from corpus import DEFAULT_CONFIG
from corpus.config_errors import Problems
from corpus.errors import ConfigError
from corpus.urls import check_template


class Strict(BaseModel):
    """Unknown keys are errors: a typo must not silently fall back to a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreSettings(Strict):
    path: Path = Path(".corpus")
    url: str | None = Field(default=None, description="Chroma server URL instead of the embedded store")


class EmbeddingSettings(Strict):
    model: str = "all-MiniLM-L6-v2"
    device: str = "cpu"
    batch_size: int = Field(default=64, ge=1, le=4096)
    query_runtime: Literal["onnx", "torch"] = Field(
        default="onnx", description="what embeds search queries: the model exported to ONNX Runtime (same vectors, "
                                    "under half the time) or torch itself")


class ChunkingSettings(Strict):
    max_tokens: int | None = Field(default=None, ge=32, description="defaults to the model's own limit")
    overlap_tokens: int = Field(default=32, ge=0, le=128)
    min_tokens: int = Field(default=48, ge=0, description="smaller neighbours are merged up to this")


class IngestSettings(Strict):
    """Bounds that hold for every source, so no input of any size takes an ingest past a bounded memory."""

    max_text_mb: int = Field(default=50, ge=1, description="an item with more text is refused with one line")
    nice: int = Field(default=10, ge=0, le=19, description="CPU priority the ingest and dream commands lower "
                      "themselves by, so servers on the same machine keep answering quickly; 0 keeps it")
    # Optional system tools, used when installed; false turns one off where it is installed but unwanted.
    ocr: bool = Field(default=True, description="Tesseract reads PDFs without a text layer")
    ocr_languages: str = Field(default="eng", pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$",
                               description="Tesseract languages, e.g. 'eng+deu'")
    ocr_max_pages: int = Field(default=100, ge=1, description="a scanned PDF with more pages is refused")
    ocr_timeout: float = Field(default=600.0, gt=0, description="seconds of OCR per document")
    libreoffice: bool = Field(default=True, description="LibreOffice converts .doc/.ppt to be read")
    libreoffice_timeout: float = Field(default=120.0, gt=0, description="seconds per conversion")

    @property
    def max_text_bytes(self) -> int:
        return self.max_text_mb * 2**20


class TokenSettings(Strict):
    """A bearer token for the HTTP server; its value comes from the environment, never from the file."""

    name: str
    env: str = Field(description="environment variable holding the token")
    groups: tuple[str, ...] = Field(default=(), description="access groups whose chunks this token may read")


LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def _public_address(value: str) -> str:
    """An address people's browsers and Claude's servers reach: https, or http on this machine only (tests)."""
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{value!r} is not an address like https://kb.example.com")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        raise ValueError(f"{value!r} must use https: sign-in codes and tokens cross it (http only on loopback)")
    if parts.query or parts.fragment:
        raise ValueError(f"{value!r}: give the address without a query or fragment")
    return value.rstrip("/")


class OidcSettings(Strict):
    """Sign-in through the organisation's OpenID Connect provider; the client secret comes from the environment."""

    issuer: str = Field(description="the provider's issuer URL, e.g. https://accounts.google.com")
    client_id: str = Field(min_length=1)
    client_secret_env: str = Field(min_length=1, description="environment variable holding the client secret")
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    groups_claim: str = Field(default="groups", min_length=1,
                              description="ID token / userinfo claim listing the person's groups, if sent")
    access_token_seconds: int = Field(default=3600, ge=1, description="lifetime of corpus's own access tokens")
    refresh_token_days: int = Field(default=30, ge=1, description="lifetime of corpus's refresh tokens")

    @field_validator("issuer")
    @classmethod
    def _issuer_address(cls, value: str) -> str:
        return _public_address(value)

    @field_validator("scopes")
    @classmethod
    def _openid_scope(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if "openid" not in value:
            raise ValueError("must include \"openid\": without it the provider sends no ID token")
        return value


class GroupRule(Strict):
    """Access groups for people by e-mail: everyone of a ``domain``, or the listed ``emails``."""

    domain: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.-]+\.[A-Za-z]+$",
                               description="e-mail domain, e.g. example.com")
    emails: tuple[str, ...] = ()
    groups: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_match(self) -> GroupRule:
        if (self.domain is None) == (not self.emails):
            raise ValueError("give exactly one of domain or emails")
        return self

    def matches(self, email: str) -> bool:
        email = email.lower()
        if self.domain is not None:
            return email.endswith("@" + self.domain.lower())
        return email in {e.lower() for e in self.emails}


class ServerSettings(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=1, le=65535)
    allowed_hosts: tuple[str, ...] = Field(default=(), description="extra Host headers accepted, e.g. 'kb.corp:*'")
    allowed_origins: tuple[str, ...] = Field(default=(), description="extra browser Origins accepted")
    query_cache: int = Field(default=4096, ge=0, le=1_000_000,
                             description="query vectors a server keeps for repeated questions; 0 turns it off")
    tokens: tuple[TokenSettings, ...] = ()
    public_url: str | None = Field(default=None, description="the address people and Claude reach the server at, "
                                   "e.g. https://kb.example.com; required with [server.oidc]")
    oidc: OidcSettings | None = None
    groups: tuple[GroupRule, ...] = ()
    question_files: tuple[Path, ...] = Field(default=(), description="question files (.md, .yaml, .toml) the web "
                                             "page offers for an onboarding check; relative to the config file")
    header_timeout: float = Field(default=10.0, gt=0, le=300,
                                  description="seconds a client may take to send a request's headers")
    idle: float = Field(default=600.0, gt=0, description="seconds the engine that stdio sessions share stays "
                        "up without a session")

    @field_validator("public_url")
    @classmethod
    def _public_url_address(cls, value: str | None) -> str | None:
        return value if value is None else _public_address(value)


class ClaudeSettings(Strict):
    """The judgement layer's model. The key comes from the environment; without it, offline mode runs."""

    model: str = "claude-haiku-4-5"
    api_key_env: str = Field(default="ANTHROPIC_API_KEY", description="environment variable holding the key")
    base_url: str | None = Field(default=None, description="a gateway or proxy instead of api.anthropic.com")
    contextualize: bool = Field(default=False, description="Claude situates each chunk in its document")
    likely_questions: bool = Field(default=False, description="Claude writes questions each chunk answers; they are "
                                   "keyword-indexed with it, so a question put in other words still finds it")
    max_concurrency: int = Field(default=4, ge=1, le=64)
    max_retries: int = Field(default=3, ge=0, le=10, description="on 429, 5xx and dropped connections")
    timeout: float = Field(default=60.0, gt=0)
    token_budget: int = Field(default=2_000_000, ge=0,
                              description="tokens (input, cached, output) per run; then offline")
    input_price: float = Field(default=1.0, ge=0, description="USD per million input tokens, for cost estimates")
    output_price: float = Field(default=5.0, ge=0, description="USD per million output tokens")


class FeedbackSettings(Strict):
    """The question log `corpus gaps` learns from: every search and reported gap, kept in the store folder."""

    log: bool = Field(default=True, description="record searches and report_gap calls")
    retention_days: int = Field(default=90, ge=1, le=3650, description="entries older than this are deleted")


class SourceSettings(Strict):
    """Keys every source has; each connector extends this with its own options."""

    cites_files: ClassVar[bool] = True  # False: the connector cites its own addresses and has no use for url

    name: str
    kind: str
    path: Path
    access: tuple[str, ...] = ()
    url: str | None = Field(default=None, description="citation address template with {path} or {path_noext}, "
                            "e.g. https://handbook.example.org/{path_noext}/; default: the file's file:// URI")

    @field_validator("name")
    @classmethod
    def _name_is_a_word(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
            raise ValueError("use letters, digits, '-', '_' or '.'")
        return value

    @field_validator("url")
    @classmethod
    def _url_template(cls, value: str | None) -> str | None:
        if value is not None and not cls.cites_files:
            raise ValueError("not used by this kind of source: only docs and meetings sources cite files")
        return value if value is None else check_template(value)


class Config(Strict):
    root: Path  # folder of the config file; relative paths resolve against it
    corpus: StoreSettings = StoreSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    ingest: IngestSettings = IngestSettings()
    server: ServerSettings = ServerSettings()
    claude: ClaudeSettings = ClaudeSettings()
    feedback: FeedbackSettings = FeedbackSettings()
    sources: tuple[SourceSettings, ...] = ()

    @property
    def store_path(self) -> Path:
        return self.corpus.path if self.corpus.path.is_absolute() else self.root / self.corpus.path

    def source(self, name: str) -> SourceSettings:
        for source in self.sources:
            if source.name == name:
                return source
        known = ", ".join(s.name for s in self.sources) or "none"
        raise ConfigError(f"no source named {name!r} in the config (sources: {known})")


def parse_config(path: Path | None, settings_model: Callable[[object], type[SourceSettings]]) -> Config:
    """Read and validate a corpus.toml; every problem is a ConfigError naming the key and line.

    ``settings_model`` gives the options a source of each kind may have; the connectors know them
    (``connectors.load_config`` passes it), this module sits below them.
    """
    path = Path(path or DEFAULT_CONFIG)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (pass --config PATH or create corpus.toml)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: arrays or tables nested too deeply to read") from None

    root = path.resolve().parent
    problems = Problems(path, text)
    raw_sources = raw.pop("sources", [])
    if not isinstance(raw_sources, list):
        problems.add(("sources",), "must be an array of tables ([[sources]])")
        raw_sources = []
    sources: dict[int, SourceSettings] = {}  # by their place in the file
    for index, entry in enumerate(raw_sources):
        where = ("sources", index)
        if not isinstance(entry, dict):
            problems.add(where, "must be a table")
            continue
        try:
            model = settings_model(entry.get("kind"))
        except ConfigError as exc:
            problems.add((*where, "kind"), str(exc))
            continue
        try:
            source = model.model_validate(entry)
        except ValidationError as exc:
            problems.add_validation(exc, model, where)
            continue
        if not source.path.is_absolute():
            source = source.model_copy(update={"path": root / source.path})
        if not source.path.exists():
            problems.add((*where, "path"), f"{source.path} does not exist")
        sources[index] = source

    seen: set[str] = set()
    for index, source in sources.items():
        if source.name in seen:
            problems.add(("sources", index, "name"), f"source names must be unique; repeated: {source.name}")
        seen.add(source.name)
    try:
        config = Config.model_validate({**raw, "root": root, "sources": tuple(sources.values())})
    except ValidationError as exc:
        problems.add_validation(exc, Config)
    else:
        _check_token_envs(problems, config.server.tokens)
        _check_oidc(problems, config.server)
        _check_store_path(problems, config.store_path)
    problems.raise_if_any()  # always raises when the config did not validate
    return config


def _check_token_envs(problems: Problems, tokens: tuple[TokenSettings, ...]) -> None:
    """Two tokens reading one variable would be one secret with two sets of groups: which one holds is luck."""
    owner: dict[str, str] = {}
    for index, token in enumerate(tokens):
        if token.env in owner:
            problems.add(("server", "tokens", index, "env"), f"{token.env} is already the variable of token "
                         f"{owner[token.env]!r}; give each token its own environment variable")
        owner[token.env] = token.name


def _check_oidc(problems: Problems, server: ServerSettings) -> None:
    """The IdP sends people back to public_url; without it no redirect URI can be registered."""
    if server.oidc is not None and server.public_url is None:
        problems.add(("server", "oidc"), "needs [server] public_url, the address people reach this server at "
                     "(the redirect URI registered at the provider is public_url + /oauth/callback)")
    elif server.oidc is None and server.groups:
        problems.add(("server", "groups"), "rules for people signed in through [server.oidc], which is not set")


def _check_store_path(problems: Problems, store: Path) -> None:
    """The store folder (or the nearest part of its path that exists) must be a folder."""
    existing = next(p for p in (store, *store.parents) if p.exists())
    if not existing.is_dir():
        problems.add(("corpus", "path"), f"{existing} is a file, not a folder; point corpus.path at a folder "
                     "(it is created when missing)")
