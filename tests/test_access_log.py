"""The access log: a line per request, with no body or query string, written in batches."""

from __future__ import annotations

import io
import time

import httpx

from conftest import API_VERSION, Server
from stockade.telemetry import AccessLog


def test_lines_wait_in_memory_until_the_batch_is_written() -> None:
    stream = io.StringIO()
    log = AccessLog(stream)
    log.add(("10.0.0.7", 50123), "POST", "/openai/v1/chat/completions", 200, 1.234, "req-1")
    log.add(None, "GET", "/healthz", 200, 0.1, "req-2")
    assert stream.getvalue() == ""
    log.flush()
    first, second = stream.getvalue().splitlines()
    assert first.endswith(' 10.0.0.7:50123 "POST /openai/v1/chat/completions" 200 1.2ms req-1')
    assert second.endswith(' - "GET /healthz" 200 0.1ms req-2')


def test_a_served_call_is_logged_with_its_request_id_and_not_its_query(http: httpx.Client, server: Server) -> None:
    response = http.get("/openai/models", params={"api-version": API_VERSION})
    request_id = response.headers["x-request-id"]
    deadline = time.monotonic() + 10
    while request_id not in (log := (server.data_dir / "server.log").read_text()):
        assert time.monotonic() < deadline, "the call never reached the access log"
        time.sleep(0.05)
    line = next(line for line in log.splitlines() if request_id in line)
    assert '"GET /openai/models" 200 ' in line and "api-version" not in line
