"""Shared fixtures: the real packaged model (loaded once), real Chroma stores in temp folders."""

from __future__ import annotations

import shutil
import socket
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

import corpus  # noqa: F401  (offline environment before any heavy import)

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
SAMPLE = REPO / "sample" / "docs"
SHARED_MISSING = "shared data not available"  # the skip reason the summary line counts

# Variables a developer's shell may hold that would change what a test sees: a real API key (Claude calls
# would leave the machine), another default config, a terminal width.
UNSET = ("ANTHROPIC_API_KEY", "CORPUS_CONFIG", "COLUMNS", "LINES", "HF_HOME", "TRANSFORMERS_CACHE")
FIXED = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
         "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}


def shared(*parts: str) -> Path:
    """A path in ../shared/data, skipping the test where the shared data is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{SHARED_MISSING}: {SHARED if not SHARED.exists() else path}")  # one skip line, not one a path
    return path


@pytest.fixture(scope="session", autouse=True)
def isolated_environment(tmp_path_factory):
    """Every test, module fixture and process they start runs in one known environment, whatever the shell held:
    a home and XDG folders of the session's own, the runtime folder short so engine sockets fit in 108 bytes."""
    home = tmp_path_factory.mktemp("home")
    runtime = Path(tempfile.mkdtemp(prefix="crt-", dir="/tmp"))
    folders = {"HOME": home, "XDG_CACHE_HOME": home / ".cache", "XDG_CONFIG_HOME": home / ".config",
               "XDG_DATA_HOME": home / ".local" / "share", "XDG_RUNTIME_DIR": runtime}
    with pytest.MonkeyPatch.context() as patch:
        for name in UNSET:
            patch.delenv(name, raising=False)
        for name, value in {**FIXED, **folders}.items():
            patch.setenv(name, str(value))
        yield
    shutil.rmtree(runtime, ignore_errors=True)


def pytest_terminal_summary(terminalreporter) -> None:
    """A missing ../shared/data is one loud line, not a scroll of skips."""
    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if isinstance(r.longrepr, tuple) and SHARED_MISSING in str(r.longrepr[2])]
    if skipped:
        terminalreporter.write_line(f"{len(skipped)} tests skipped: {SHARED} is missing (the real public data they "
                                    "read); put it beside the repo to run them", yellow=True, bold=True)


@pytest.fixture(scope="session")
def embedder():
    from ingest.embedder import Embedder

    return Embedder("all-MiniLM-L6-v2")


def write_config(folder: Path, sources: str, extra: str = "") -> Path:
    """A corpus.toml in ``folder`` with the store in folder/store and the given [[sources]] text."""
    path = folder / "corpus.toml"
    path.write_text(textwrap.dedent("""\
        [corpus]
        path = "store"
        """) + textwrap.dedent(extra) + "\n" + textwrap.dedent(sources))
    return path


def docs_source(name: str, path: Path, **options: object) -> str:
    lines = [f'[[sources]]\nname = "{name}"\nkind = "docs"\npath = "{path}"']
    for key, value in options.items():
        rendered = "[" + ", ".join(f'"{v}"' for v in value) + "]" if isinstance(value, list | tuple) else f'"{value}"'
        lines.append(f"{key} = {rendered}")
    return "\n".join(lines) + "\n"


def load_all(connector) -> tuple[dict, dict]:
    """Every item a connector lists, loaded: documents by native id, and one-line failures by native id."""
    from connectors.base import Skipped
    from corpus.errors import ItemError

    loaded, failed = {}, {}
    for item in connector.items():
        if isinstance(item, Skipped):  # as a run does: reported, never loaded
            failed[item.native_id] = item.reason
            continue
        try:
            loaded[item.native_id] = connector.load(item)
        except ItemError as exc:
            failed[item.native_id] = str(exc)
    return loaded, failed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, seconds: float = 60) -> None:
    """Until a server accepts connections on 127.0.0.1:port (it loads models first)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


class NetworkBlocked(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open an internet connection fails the test (Unix sockets stay allowed)."""
    attempts: list[object] = []
    real_connect = socket.socket.connect

    def guarded(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append(address)
            raise NetworkBlocked(f"network access attempted: {address}")
        return real_connect(self, address)

    def guarded_create(address, *args, **kwargs):
        attempts.append(address)
        raise NetworkBlocked(f"network access attempted: {address}")

    def guarded_lookup(host, *args, **kwargs):
        attempts.append(host)
        raise NetworkBlocked(f"name lookup attempted: {host}")

    monkeypatch.setattr(socket, "getaddrinfo", guarded_lookup)
    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket, "create_connection", guarded_create)
    return attempts
