"""Limits on every connection, met before a request reaches the application (and so before any
key is checked): the size of a request head, the time to send it, pauses in a body, idle
keep-alive connections and the number of connections (replica/http_protocol.py).

Real `stockade serve` processes over loopback, spoken to on raw sockets, since what is tested is
what a client that breaks HTTP's rules meets. The timeouts are configured short; no test asserts
how long anything took, only what happened, within generous outer deadlines.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from conftest import API_VERSION, Server, launch, server_env, stop

pytestmark = pytest.mark.server  # real servers, no model

SHORT = "0.3"  # seconds: the head, body and keep-alive timeouts of the `limited` server
DEADLINE = 30.0  # seconds a test waits for an outcome before it fails
MAX_HEAD = 32 * 1024


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One worker process (so one process's memory to watch), every timeout short."""
    data_dir = tmp_path_factory.mktemp("limited")
    env = server_env(
        data_dir,
        STOCKADE_CONNECTIONS__HEADER_TIMEOUT_SECONDS=SHORT,
        STOCKADE_CONNECTIONS__BODY_TIMEOUT_SECONDS=SHORT,
        STOCKADE_CONNECTIONS__KEEP_ALIVE_SECONDS=SHORT,
    )
    running = launch(env, data_dir)
    yield running
    stop(running.process)


CAP = 40


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """At most CAP connections, and the default timeouts, long enough that connections a test
    holds open stay open while it runs."""
    data_dir = tmp_path_factory.mktemp("capped")
    env = server_env(data_dir, STOCKADE_CONNECTIONS__MAX_CONNECTIONS=str(CAP))
    running = launch(env, data_dir)
    yield running
    stop(running.process)


def connect(server: Server) -> socket.socket:
    address = urlsplit(server.url)
    return socket.create_connection((address.hostname, address.port), timeout=DEADLINE)


def until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset counts as closing)."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def exchange(server: Server, request: bytes) -> bytes:
    """What the server answers ``request`` with, on a connection of its own, until it closes."""
    with connect(server) as sock:
        sock.sendall(request)
        return until_closed(sock)


def refusal(received: bytes) -> tuple[int, str]:
    """The status and Azure error code of a whole response."""
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)["error"]["code"]


def head(path: str = "/healthz", *headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: stockade.test", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def healthy(server: Server) -> int:
    return httpx.get(f"{server.url}/healthz", timeout=DEADLINE).status_code


# -- the request head ---------------------------------------------------------------------------


def test_a_head_over_the_cap_gets_431_in_azures_envelope(limited: Server) -> None:
    oversized = head("/healthz", "x-filler: " + "a" * (2 * MAX_HEAD))
    assert refusal(exchange(limited, oversized)) == (431, "RequestHeaderFieldsTooLarge")


def test_a_head_within_the_cap_is_served(limited: Server) -> None:
    large = head("/healthz", "connection: close", "x-filler: " + "a" * (MAX_HEAD // 2))
    assert exchange(limited, large).startswith(b"HTTP/1.1 200")


def test_huge_heads_leave_the_servers_memory_flat(limited: Server) -> None:
    """50 MiB of headers across 10 connections, none ever finished: each is cut off after the
    cap (and a little lingering), so memory does not grow with what is sent."""
    def flood() -> None:
        with connect(limited) as sock:
            with contextlib.suppress(OSError):  # the server stops reading, as it should
                sock.sendall(b"GET /healthz HTTP/1.1\r\nx-filler: " + b"a" * (5 * 1024 * 1024))
            until_closed(sock)

    flood()  # once first, so that what any first request allocates is not counted
    before = rss_bytes(limited.process.pid)
    floods = [threading.Thread(target=flood) for _ in range(10)]
    for thread in floods:
        thread.start()
    for thread in floods:
        thread.join(DEADLINE)
    assert not any(thread.is_alive() for thread in floods), "a connection was never closed"
    assert rss_bytes(limited.process.pid) - before < 20 * 1024 * 1024
    assert healthy(limited) == 200


def test_a_head_that_never_ends_gets_408(limited: Server) -> None:
    unfinished = b"GET /healthz HTTP/1.1\r\nHost: stockade.test\r\n"
    assert refusal(exchange(limited, unfinished)) == (408, "RequestTimeout")


def test_a_head_sent_a_byte_at_a_time_is_cut_off(limited: Server) -> None:
    """Slowloris: each byte comes well within the timeout, but the whole head has a deadline."""
    with connect(limited) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nx-slow: ")
        sock.settimeout(0.1)  # the pause between two bytes, well under the head timeout
        deadline = time.monotonic() + DEADLINE
        answer = None
        while answer is None:
            assert time.monotonic() < deadline, "the server kept the connection open"
            try:
                answer = sock.recv(65536)
            except TimeoutError:
                sock.sendall(b"a")
    assert answer.startswith(b"HTTP/1.1 408")


def test_a_connection_that_sends_nothing_is_closed(limited: Server) -> None:
    assert exchange(limited, b"") == b""


def test_a_malformed_request_gets_400_in_azures_envelope(limited: Server) -> None:
    assert refusal(exchange(limited, b"NOT HTTP AT ALL\r\n\r\n")) == (400, "BadRequest")


# -- the request body ---------------------------------------------------------------------------


def chat_head(*headers: str) -> bytes:
    path = f"/openai/deployments/gpt-4o/chat/completions?api-version={API_VERSION}"
    lines = [f"POST {path} HTTP/1.1", "Host: stockade.test", "Content-Type: application/json", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_a_body_shorter_than_its_content_length_gets_408(limited: Server) -> None:
    short = chat_head(f"api-key: {limited.key}", "Content-Length: 100") + b'{"messages"'
    assert refusal(exchange(limited, short)) == (408, "RequestTimeout")


def test_a_stalled_chunked_body_gets_408(limited: Server) -> None:
    stalled = chat_head(f"api-key: {limited.key}", "Transfer-Encoding: chunked") + b'b\r\n{"messages"\r\n'
    assert refusal(exchange(limited, stalled)) == (408, "RequestTimeout")


def test_an_unauthenticated_short_body_does_not_hold_the_connection(limited: Server) -> None:
    """Refused before its body is read (no key), the request's missing bytes are not waited for."""
    short = chat_head("Content-Length: 100") + b'{"messages"'
    assert exchange(limited, short).startswith(b"HTTP/1.1 401")


# -- idle and many connections ------------------------------------------------------------------


def test_an_idle_keep_alive_connection_is_closed(limited: Server) -> None:
    assert exchange(limited, head()).startswith(b"HTTP/1.1 200")  # answered, then closed once idle


def test_slow_connections_do_not_keep_a_client_from_being_served(capped: Server) -> None:
    slow = [connect(capped) for _ in range(CAP - 5)]
    try:
        for sock in slow:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: stockade.test\r\n")  # never finished
        assert healthy(capped) == 200
    finally:
        for sock in slow:
            sock.close()


def test_past_the_connection_cap_requests_get_503_in_azures_envelope(capped: Server) -> None:
    held = [connect(capped) for _ in range(CAP)]
    try:
        for sock in held:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # each holds a connection open
        answer = exchange(capped, head())
    finally:
        for sock in held:
            sock.close()
    assert refusal(answer) == (503, "ServiceUnavailable")


# -- several workers ------------------------------------------------------------------------------


def test_several_workers_cap_the_head_too(tmp_path: Path) -> None:
    env = server_env(tmp_path, STOCKADE_WORKERS="2")
    server = launch(env, tmp_path)
    try:
        answer = exchange(server, head("/healthz", "x-filler: " + "a" * (2 * MAX_HEAD)))
    finally:
        stop(server.process)
    assert refusal(answer) == (431, "RequestHeaderFieldsTooLarge")
