"""`corpus serve` over stdio: a light front that relays one session to the store's shared engine.

Claude Code starts one stdio server per session. Loading the model and opening the store in each would
cost every session hundreds of MB and seconds, so the front only finds the engine (``server.engine``)
on its Unix socket, starts it when none answers, and copies bytes both ways. It imports nothing heavy, and
reads corpus.toml through its validation only to start the engine: a listening engine has validated it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from corpus.errors import CorpusError

if TYPE_CHECKING:
    from corpus.config import Config

START_TIMEOUT = 120.0  # seconds for a new engine to listen; it imports the MCP stack first (about 2 s idle)
LOG_NAME = "engine.log"
MAX_SOCKET_PATH = 107  # sun_path is 108 bytes with the terminating NUL
CHUNK = 1 << 16


def runtime_dir() -> Path:
    """A folder only this user can enter: $XDG_RUNTIME_DIR/corpus, else /tmp/corpus-<uid>."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    folder = Path(base) / "corpus" if base else Path("/tmp") / f"corpus-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise CorpusError(f"cannot create the engine folder {folder}: {exc.strerror}") from None
    info = folder.lstat()  # lstat: a symbolic link planted by someone else must not be followed
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise CorpusError(f"{folder} is not a private folder of this user (owner, mode 0700); remove it or "
                          "set XDG_RUNTIME_DIR to one")
    return folder


def engine_key(config_path: Path) -> str:
    """One engine per config file and content: an edited config gets a new engine."""
    resolved = config_path.resolve()
    try:
        content = resolved.read_bytes()
    except OSError:
        read_config(config_path)  # raises the config error that says why it cannot be read
        raise
    return hashlib.sha256(str(resolved).encode() + b"\0" + content).hexdigest()[:20]


def socket_path(config_path: Path) -> Path:
    path = runtime_dir() / f"{engine_key(config_path)}.sock"
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise CorpusError(f"the engine socket path {path} is longer than a Unix socket allows; "
                          "set XDG_RUNTIME_DIR to a shorter folder")
    return path


def read_config(config_path: Path) -> Config:
    """corpus.toml validated; only on the way to starting the engine or naming its log, as pydantic and
    the connectors load with it."""
    from connectors import load_config

    return load_config(config_path)


def log_path(config_path: Path) -> Path:
    return read_config(config_path).store_path / LOG_NAME


def connect(path: Path) -> socket.socket | None:
    """A connection to a listening engine, or None when there is none (no socket, or a stale one)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(os.fsencode(path))
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.ENOENT, errno.ECONNREFUSED):
            return None
        raise CorpusError(f"cannot connect to the engine at {path}: {exc.strerror}") from None
    return sock


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """The pid, uid and gid of the process at the other end of a Unix socket."""
    return struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))


def engine_pid(config_path: Path) -> int | None:
    """The pid of the engine serving this config, or None when none listens."""
    sock = connect(socket_path(config_path))
    if sock is None:
        return None
    with sock:
        return peer_credentials(sock)[0]


def reach_engine(config_path: Path) -> socket.socket:
    """The engine's socket, starting the engine first when none listens; one start among racing fronts."""
    path = socket_path(config_path)
    sock = connect(path)
    if sock is not None:
        return sock
    with open(path.with_suffix(".lock"), "w") as lock:
        _lock(lock, path)
        return connect(path) or _start(config_path, path)


def _lock(lock, path: Path) -> None:
    """Wait for a front that is starting the engine (it holds the lock for at most START_TIMEOUT)."""
    deadline = time.monotonic() + START_TIMEOUT + 10
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise CorpusError(f"another `corpus serve` has held {path.with_suffix('.lock')} for over "
                                  f"{START_TIMEOUT + 10:.0f} s while starting the engine") from None
            time.sleep(0.05)


def _start(config_path: Path, path: Path) -> socket.socket:
    """Spawn the engine detached from this session (its own session, no inherited streams), wait for it."""
    log = log_path(config_path)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as err:  # cwd: `python -m` puts it first on sys.path, where a folder may shadow a package
        engine = subprocess.Popen([sys.executable, "-m", "server.engine", str(config_path.resolve())],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                  cwd=path.parent, start_new_session=True, close_fds=True)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        sock = connect(path)
        if sock is not None:
            return sock
        if engine.poll() is not None:
            raise CorpusError(f"the corpus engine exited while starting (status {engine.returncode}); see {log}")
        time.sleep(0.05)
    raise CorpusError(f"the corpus engine did not listen within {START_TIMEOUT:.0f} s; see {log}")


def relay(sock: socket.socket, config_path: Path) -> int:
    """Copy stdin to the engine and the engine to stdout until the session ends.

    The engine closing while the client still talks means it died: say so in one line and fail, so the
    client restarts the session (and with it a new engine).
    """
    client_done = threading.Event()

    def upstream() -> None:
        try:
            while data := os.read(0, CHUNK):
                sock.sendall(data)
        except OSError:
            return  # the engine went away; the main loop reports it
        client_done.set()
        with suppress(OSError):
            sock.shutdown(socket.SHUT_WR)  # the engine sees the end of input and ends the session

    threading.Thread(target=upstream, name="corpus-front-upstream", daemon=True).start()
    while True:
        try:
            data = sock.recv(CHUNK)
        except OSError:
            data = b""
        if not data:
            if client_done.is_set():
                return 0
            print(f"corpus serve: the corpus engine stopped during the session; see {log_path(config_path)} "
                  "(a new session starts a new engine)", file=sys.stderr, flush=True)
            return 1
        try:
            _write_all(1, data)
        except BrokenPipeError:
            return 0  # the client left


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def serve_front(config_path: Path) -> int:
    """Relay this process's stdio session to the store's engine; the exit status of the session."""
    sock = reach_engine(config_path)
    with sock:
        return relay(sock, config_path)
