"""The warm engine: one process per store that every stdio session on this machine shares.

It holds the model and one reader of the store (the MCP server's ``Service``) and serves each
connection on its Unix socket as one MCP session, framed as stdio frames it: one JSON-RPC message per
line. ``server.front`` starts it on demand; it exits after ``[server] idle`` seconds without a session
and removes its socket. Started as ``python -m server.engine CONFIG``, its stderr is ``engine.log``.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import time
from pathlib import Path

import anyio
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp.server.runner import serve_dual_era_loop
from mcp.shared.message import SessionMessage
from mcp_types import jsonrpc_message_adapter

from connectors import load_config
from corpus.config import Config
from server.front import connect, peer_credentials, socket_path
from server.mcp_server import MAX_REQUEST_BYTES, Service, build_server

log = logging.getLogger("corpus.engine")

GRACE = 1.0  # seconds the listener stays open after its path is gone, for connections already queued


class Engine:
    """Sessions over one shared Service; counts them to know when it has been idle long enough."""

    def __init__(self, config: Config, path: Path):
        self.config = config
        self.path = path
        self.server = build_server(config)._lowlevel_server  # the session loop needs the SDK's low-level server
        self.service = Service(config)
        self.sessions = 0
        self.quiet_since = time.monotonic()

    async def run(self) -> None:
        """Serve until idle or signalled; the socket is removed before the last sessions finish."""
        live = connect(self.path)
        if live is not None:  # another engine already serves this config: leave it be
            live.close()
            log.warning("pid %d finds an engine listening on %s already; it exits", os.getpid(), self.path)
            return
        listener = await anyio.create_unix_listener(self.path, mode=0o600)
        inode = self.path.stat().st_ino
        log.info("pid %d serves %s on %s", os.getpid(), self.config.root, self.path)
        try:
            async with anyio.create_task_group() as sessions:
                async with anyio.create_task_group() as accepting:
                    accepting.start_soon(self._accept, listener, sessions)
                    accepting.start_soon(self._stop_on_signal, sessions.cancel_scope)
                    await self._until_idle()
                    _unlink(self.path, inode)
                    await anyio.sleep(GRACE)
                    accepting.cancel_scope.cancel()
                await listener.aclose()
        finally:
            _unlink(self.path, inode)
            self.service.close()
            log.info("pid %d stopped", os.getpid())

    async def _accept(self, listener, sessions) -> None:
        while True:
            stream = await listener.accept()
            self.sessions += 1
            sessions.start_soon(self._session, stream)

    async def _until_idle(self) -> None:
        idle = self.config.server.idle
        while self.sessions or time.monotonic() - self.quiet_since < idle:
            await anyio.sleep(min(idle, 1.0))
        log.info("no session for %.0f s; exiting", idle)

    async def _stop_on_signal(self, scope: anyio.CancelScope) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:
                log.info("signal %d; exiting", signum)
                scope.cancel()
                return

    async def _session(self, stream: SocketStream) -> None:
        """One MCP session: lines from the socket in, lines out, the SDK's loop in between."""
        try:
            async with stream:
                _, uid, _ = peer_credentials(stream.extra(SocketAttribute.raw_socket))
                if uid != os.getuid():  # the folder is private already; this is the second lock
                    log.warning("refused a connection from another user")
                    return
                inbound_writer, inbound = anyio.create_memory_object_stream[SessionMessage | Exception](0)
                outbound, outbound_reader = anyio.create_memory_object_stream[SessionMessage](0)
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_read_lines, stream, inbound_writer)
                    tg.start_soon(_write_lines, stream, outbound_reader)
                    await serve_dual_era_loop(self.server, inbound, outbound, lifespan_state=self.service,
                                              init_options=self.server.create_initialization_options())
                    tg.cancel_scope.cancel()
        except Exception:
            log.exception("a session failed")
        finally:
            self.sessions -= 1
            self.quiet_since = time.monotonic()


async def _read_lines(stream: SocketStream, messages) -> None:
    """Each line one JSON-RPC message (as the SDK's stdio transport reads them); a bad one is reported."""
    reader = BufferedByteReceiveStream(stream)
    async with messages:
        while True:
            try:
                line = await reader.receive_until(b"\n", MAX_REQUEST_BYTES)
            except (anyio.EndOfStream, anyio.IncompleteRead):
                return
            except anyio.DelimiterNotFound:
                log.warning("a message longer than %d bytes; the session is closed", MAX_REQUEST_BYTES)
                return
            if not line.strip():
                continue
            try:
                message: SessionMessage | Exception = SessionMessage(
                    jsonrpc_message_adapter.validate_json(line, by_name=False))
            except ValueError as exc:  # answered by the session loop as stdio answers it
                message = exc
            try:
                await messages.send(message)
            except anyio.BrokenResourceError:  # the session loop has ended
                return


async def _write_lines(stream: SocketStream, messages) -> None:
    async with messages:
        async for message in messages:
            line = message.message.model_dump_json(by_alias=True, exclude_unset=True)
            await stream.send(line.encode() + b"\n")


def _unlink(path: Path, inode: int) -> None:
    """Remove our socket, never one a newer engine has put at the same path."""
    try:
        if path.stat().st_ino == inode:
            path.unlink()
    except FileNotFoundError:
        pass


def main(argv: list[str] | None = None) -> int:
    config_path = Path((argv or sys.argv[1:])[0])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    faulthandler.enable()  # a crash in native code (Chroma, torch) leaves its stack in the log
    config = load_config(config_path)
    anyio.run(Engine(config, socket_path(config_path)).run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
