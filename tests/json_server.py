"""A small HTTP server on loopback, for the parties Stockade calls out to (JWKS, webhooks, upstreams
that misbehave)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# (method, path, request body or None) → the JSON answer
Answer = Callable[[str, str, Any], Any]
# (method, path, request body or None) → status, headers and body bytes
Reply = Callable[[str, str, Any], tuple[int, dict[str, str], bytes]]


def serve_json(answer: Answer, port: int = 0) -> contextlib.AbstractContextManager[int]:
    """Serve ``answer`` for GET and POST; yields the port."""

    def reply(method: str, path: str, request: Any) -> tuple[int, dict[str, str], bytes]:
        return 200, {"content-type": "application/json"}, json.dumps(answer(method, path, request)).encode()

    return serve(reply, port)


@contextlib.contextmanager
def serve(reply: Reply, port: int = 0) -> Iterator[int]:
    """Serve ``reply`` for GET and POST (request bodies are JSON); yields the port."""

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, method: str) -> None:
            length = int(self.headers.get("content-length") or 0)
            request = json.loads(self.rfile.read(length)) if length else None
            status, headers, body = reply(method, self.path, request)
            self.send_response(status)
            for name, value in {"content-length": str(len(body)), **headers}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._reply("GET")

        def do_POST(self) -> None:
            self._reply("POST")

        def log_message(self, *args: Any) -> None:
            pass

    with running(ThreadingHTTPServer(("127.0.0.1", port), Handler)) as bound:
        yield bound


@contextlib.contextmanager
def running(server: ThreadingHTTPServer) -> Iterator[int]:
    """Run ``server`` on a thread of its own until the block ends; yields its port."""
    # A short poll: shutting down waits for the loop to look, up to this long.
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
