"""The upstream HTTP client (stockade.backends.http) against servers scripted byte by byte, over
loopback: keep-alive reuse, framing, streaming, the stale-connection race, limits and failures.
The client against real upstreams is covered by test_upstream.py."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from stockade.backends.http import BodyTooLarge, ConnectionPool, HTTPError, UpstreamTimeout
from stockade.cli.tls import self_signed_certificate

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


class Scripted:
    """A loopback server that runs ``handler`` on each connection, numbered from 0."""

    def __init__(self) -> None:
        self.connections = 0
        self.open = 0
        self.most_open = 0

    @contextlib.asynccontextmanager
    async def serving(self, handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
        async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            index = self.connections
            self.connections += 1
            self.open += 1
            self.most_open = max(self.most_open, self.open)
            try:
                await handler(reader, writer, index)
            finally:
                self.open -= 1
                writer.close()

        server = await asyncio.start_server(connected, "127.0.0.1", 0, ssl=tls)
        port = server.sockets[0].getsockname()[1]
        async with server:
            yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request's head and body (the client always sends content-length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    return head + await reader.readexactly(length)


async def answer_every_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
    with contextlib.suppress(asyncio.IncompleteReadError):
        while True:
            await read_request(reader)
            writer.write(OK)
            await writer.drain()


def answering(*parts: bytes) -> Handler:
    """A handler that answers one request with ``parts``, sent one after the other."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        for part in parts:
            writer.write(part)
            await writer.drain()

    return handler


def fetch_once(handler: Handler) -> tuple[int, bytes]:
    async def scenario() -> tuple[int, bytes]:
        async with Scripted().serving(handler) as url:
            return await post(pool(url))

    return asyncio.run(scenario())


def first_connection(misbehave: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]) -> Handler:
    """A handler that reads the first connection's request and hands the connection to
    ``misbehave``, and answers every request on the connections after it."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        if index == 0:
            await read_request(reader)
            await misbehave(reader, writer)
        else:
            await answer_every_request(reader, writer, index)

    return handler


def pool(url: str, **options: float) -> ConnectionPool:
    settings: dict[str, float] = {"max_connections": 10, "timeout_seconds": 5.0, **options}
    return ConnectionPool(url, {"Content-Type": "application/json"}, **settings)  # type: ignore[arg-type]


async def post(client: ConnectionPool, body: bytes = b"{}") -> tuple[int, bytes]:
    async with await client.post("/v1/chat/completions", body) as response:
        return response.status, await response.read()


def test_sequential_requests_share_one_keep_alive_connection() -> None:
    async def scenario() -> None:
        server = Scripted()
        async with server.serving(answer_every_request) as url:
            client = pool(url)
            assert [await post(client) for _ in range(5)] == [(200, b"{}")] * 5
            await client.close()
        assert server.connections == 1

    asyncio.run(scenario())


def test_the_request_carries_host_length_and_the_pools_headers() -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        seen.append(await read_request(reader))
        writer.write(OK)

    async def scenario() -> None:
        async with Scripted().serving(handler) as url:
            await post(pool(url), b'{"a": 1}')
        host = url.removeprefix("http://").encode()
        assert seen[0] == (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: " + host + b"\r\n"
            b"Content-Type: application/json\r\ncontent-length: 8\r\n\r\n" + b'{"a": 1}'
        )

    asyncio.run(scenario())


def test_a_response_saying_connection_close_is_not_reused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}")

    async def scenario() -> None:
        server = Scripted()
        async with server.serving(handler) as url:
            client = pool(url)
            assert [await post(client) for _ in range(3)] == [(200, b"{}")] * 3
        assert server.connections == 3

    asyncio.run(scenario())


def test_a_chunked_body_is_read_whole() -> None:
    parts = [b"%x\r\n%s\r\n" % (len(part), part) for part in (b'{"a"', b": 1", b"}")]
    handler = answering(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", *parts, b"0\r\n\r\n")
    assert fetch_once(handler) == (200, b'{"a": 1}')


def test_a_body_that_ends_with_the_connection_is_read_whole() -> None:
    assert fetch_once(answering(b"HTTP/1.0 200 OK\r\n\r\nuntil the end")) == (200, b"until the end")


def test_a_streamed_body_arrives_as_the_server_sends_it() -> None:
    first_seen = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await first_seen.wait()  # the second part only once the client has the first
        writer.write(b"6\r\nsecond\r\n0\r\n\r\n")

    async def scenario() -> None:
        async with Scripted().serving(handler) as url:
            received = []
            async with await pool(url).post("/v1/chat/completions", b"{}") as response:
                async for chunk in response.chunks():
                    received.append(chunk)
                    first_seen.set()
            assert received == [b"first", b"second"]

    asyncio.run(scenario())


def test_a_connection_the_server_dropped_while_idle_is_replaced_without_failing_the_call() -> None:
    async def answer_then_drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(OK)
        await writer.drain()
        await read_request(reader)  # the idle-timeout race: the next request arrives as it gives up

    handler = first_connection(answer_then_drop)

    async def scenario() -> None:
        server = Scripted()
        async with server.serving(handler) as url:
            client = pool(url)
            assert await post(client) == (200, b"{}")
            assert await post(client) == (200, b"{}")
        assert server.connections == 2

    asyncio.run(scenario())


def test_a_new_connection_closed_without_an_answer_is_an_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)

    async def scenario() -> None:
        server = Scripted()
        async with server.serving(handler) as url:
            with pytest.raises(HTTPError, match="closed the connection"):
                await post(pool(url))
        assert server.connections == 1  # a request that reached the server is not sent again

    asyncio.run(scenario())


def test_a_refused_connection_says_so() -> None:
    async def scenario() -> None:
        async with Scripted().serving(answer_every_request) as url:
            pass  # closed: nothing listens there any more
        with pytest.raises(HTTPError, match="refused"):
            await post(pool(url))

    asyncio.run(scenario())


def test_a_response_that_is_not_http_is_an_error_and_its_connection_is_dropped() -> None:
    async def not_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n")
        await reader.read()  # until the client hangs up

    handler = first_connection(not_http)

    async def scenario() -> None:
        server = Scripted()
        async with server.serving(handler) as url:
            client = pool(url)
            with pytest.raises(HTTPError, match="not valid HTTP"):
                await post(client)
            assert await post(client) == (200, b"{}")
        assert server.connections == 2

    asyncio.run(scenario())


@pytest.mark.parametrize("streamed", [False, True])
def test_a_body_larger_than_the_read_buffer_arrives_whole(streamed: bool) -> None:
    body = bytes(range(256)) * 16 * 1024  # 4 MiB: reading pauses and resumes many times

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()

    async def scenario() -> bytes:
        async with Scripted().serving(handler) as url, \
                await pool(url).post("/v1/chat/completions", b"{}") as response:
            if not streamed:
                return await response.read()
            parts = []
            async for chunk in response.chunks():
                parts.append(chunk)
                await asyncio.sleep(0)  # a consumer that lags behind the socket
            return b"".join(parts)

    assert asyncio.run(scenario()) == body


def test_a_body_over_the_limit_is_refused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n" + b"x" * 100_000)
        await writer.drain()

    async def scenario() -> None:
        async with Scripted().serving(handler) as url, \
                await pool(url).post("/v1/chat/completions", b"{}") as response:
            with pytest.raises(BodyTooLarge):
                await response.read(limit=1000)

    asyncio.run(scenario())


def test_no_more_than_max_connections_are_open_at_once() -> None:
    server = Scripted()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError):
            while True:
                await read_request(reader)
                # Held until the pool's second connection is open (or 5 s, if it never opens), so
                # that the other callers pile up behind both, however fast or busy the machine.
                deadline = asyncio.get_running_loop().time() + 5
                while server.most_open < 2 and asyncio.get_running_loop().time() < deadline:
                    await asyncio.sleep(0.001)
                writer.write(OK)

    async def scenario() -> None:
        async with server.serving(slow) as url:
            client = pool(url, max_connections=2)
            results = await asyncio.gather(*(post(client) for _ in range(8)))
        assert results == [(200, b"{}")] * 8
        assert server.most_open == 2

    asyncio.run(scenario())


def test_a_request_without_an_answer_times_out_and_its_connection_is_closed() -> None:
    closed = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        await reader.read()  # returns when the client hangs up
        closed.set()

    async def scenario() -> None:
        async with Scripted().serving(silent) as url:
            with pytest.raises(UpstreamTimeout, match=r"within 0\.2 s"):
                await post(pool(url, timeout_seconds=0.2))
            await asyncio.wait_for(closed.wait(), 5)

    asyncio.run(scenario())


def test_an_abandoned_request_closes_its_connection() -> None:
    received = asyncio.Event()

    async def no_answer(reader: asyncio.StreamReader, _: asyncio.StreamWriter) -> None:
        received.set()
        await reader.read()  # the caller gives up before any answer

    handler = first_connection(no_answer)

    async def scenario() -> None:
        server = Scripted()
        async with server.serving(handler) as url:
            client = pool(url)
            call = asyncio.create_task(post(client))
            await received.wait()
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            assert await post(client) == (200, b"{}")
        assert server.connections == 2

    asyncio.run(scenario())


def test_tls_to_a_server_whose_certificate_is_trusted(tmp_path: Path) -> None:
    certificate, key = self_signed_certificate(tmp_path, ["127.0.0.1"])
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(certificate, key)
    client_tls = ssl.create_default_context(cafile=certificate)

    async def scenario() -> None:
        async with Scripted().serving(answer_every_request, server_tls) as url:
            client = ConnectionPool(url, {}, max_connections=1, timeout_seconds=5, ssl_context=client_tls)
            assert await post(client) == (200, b"{}")

    asyncio.run(scenario())


def test_tls_to_a_server_whose_certificate_is_not_trusted_says_so(tmp_path: Path) -> None:
    certificate, key = self_signed_certificate(tmp_path, ["127.0.0.1"])
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(certificate, key)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await answer_every_request(reader, writer, index)

    async def scenario() -> None:
        async with Scripted().serving(handler, server_tls) as url:
            with pytest.raises(HTTPError, match="certificate was not trusted"):
                await post(pool(url))  # the system's trust store, which lacks it

    asyncio.run(scenario())


def test_headers_that_could_split_the_request_are_refused() -> None:
    with pytest.raises(ValueError, match="character HTTP does not allow"):
        ConnectionPool("http://127.0.0.1:1", {"api-key": "k\r\nX-Injected: 1"}, max_connections=1,
                       timeout_seconds=1)
