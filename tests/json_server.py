"""A small JSON server on loopback, for the parties Stockade calls out to (JWKS, webhooks)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# (method, path, request body or None) → the JSON answer
Answer = Callable[[str, str, Any], Any]


@contextlib.contextmanager
def serve_json(answer: Answer, port: int = 0) -> Iterator[int]:
    """Serve ``answer`` for GET and POST; yields the port."""

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, method: str) -> None:
            length = int(self.headers.get("content-length") or 0)
            request = json.loads(self.rfile.read(length)) if length else None
            body = json.dumps(answer(method, self.path, request)).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._reply("GET")

        def do_POST(self) -> None:
            self._reply("POST")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    # A short poll: shutting down waits for the loop to look, up to this long.
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
