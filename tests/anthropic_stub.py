"""A local HTTP server that speaks the Messages API, for driving the real `anthropic` client offline.

Each test gives it a ``reply`` function: request JSON -> the assistant's text, or a ``Fail`` to send
an HTTP error instead. Every request is recorded (headers and body) so tests can check what was sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = "sk-ant-test-key"


@dataclass(frozen=True)
class Fail:
    status: int
    message: str = "stubbed failure"


ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
               429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}


class MessagesStub:
    def __init__(self, reply: Callable[[dict], str | Fail]):
        self.reply = reply
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.seen: set[str] = set()  # cached prompt prefixes, as the API's prompt cache holds them
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with stub._lock:
                    stub.requests.append(body)
                    stub.headers.append(dict(self.headers))
                if self.path != "/v1/messages":
                    return self._send(404, error("not_found_error", self.path))
                if self.headers.get("authorization") != f"Bearer {KEY}":
                    return self._send(401, error("authentication_error", "invalid x-api-key"))
                answer = stub.reply(body)
                if isinstance(answer, Fail):
                    kind = ERROR_TYPES.get(answer.status, "api_error")
                    return self._send(answer.status, error(kind, answer.message), {"retry-after": "0"})
                return self._send(200, message(body, answer, stub.seen))

            def _send(self, status: int, payload: dict, extra: dict | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for name, value in (extra or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> MessagesStub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def message(request: dict, text: str, seen: set[str]) -> dict:
    """A Messages API response. Usage counts words; a cached system block is a cache write on first use and
    a cache read after, as the real API reports it."""
    written = read = 0
    for block in request.get("system") or []:
        if isinstance(block, dict) and block.get("cache_control"):
            if block["text"] in seen:
                read += len(block["text"].split())
            else:
                seen.add(block["text"])
                written += len(block["text"].split())
    prompt = sum(len(str(m["content"]).split()) for m in request["messages"])
    return {
        "id": "msg_stub", "type": "message", "role": "assistant", "model": request["model"],
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": prompt, "output_tokens": len(text.split()),
                  "cache_creation_input_tokens": written, "cache_read_input_tokens": read},
    }


def error(kind: str, text: str) -> dict:
    return {"type": "error", "error": {"type": kind, "message": text}}


if __name__ == "__main__":  # a stub to try `[claude]` by hand: python tests/anthropic_stub.py
    import time

    with MessagesStub(lambda body: "This passage is part of the document, situated for search.") as stub:
        print(f"Messages API stub on {stub.url}; key {KEY}. Ctrl-C stops it.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
