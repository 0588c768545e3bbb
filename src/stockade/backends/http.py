"""HTTP/1.1 to upstream model servers: a keep-alive connection pool on asyncio transports, with
responses parsed by httptools, the parser uvicorn serves Stockade's own requests with.

Why not aiohttp: its request path (sessions, cookies, redirects, proxies, compression, tracing,
multidicts) cost about 85 µs of CPU a call in the gateway benchmark, more than all of Stockade's
own work on a call. An upstream call needs none of that: a POST of a JSON body to a server the
operator configured, and its response read whole or as a stream (docs/performance.md).

What a pool does:

- at most ``max_connections`` connections at once; callers wait for a free one within their
  deadline;
- one exchange at a time per connection, reused while the server keeps it alive and closed once
  idle longer than ``keepalive_seconds``;
- a request sent on a reused connection that the server had closed meanwhile (the race every
  keep-alive client has) is sent once more, on a new connection;
- a request that fails, times out or is abandoned closes its connection, whose state is unknown;
- a streamed body pauses reading while the consumer is behind; a body read whole is refused past
  ``max_body_bytes``.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import cast

import httptools

CONNECT_TIMEOUT_SECONDS = 10.0
KEEPALIVE_SECONDS = 60.0
MAX_BODY_BYTES = 256 * 1024 * 1024  # a whole body; embeddings of a large batch run to tens of MB
# A streamed body buffered past this pauses reading from the server until the consumer catches up.
STREAM_BUFFER_BYTES = 256 * 1024
# The response headers kept for the caller; the rest only frame the body.
KEPT_HEADERS = frozenset({b"content-type", b"retry-after", b"retry-after-ms"})


class HTTPError(Exception):
    """The server could not be reached, broke off, or did not speak HTTP/1.1 properly."""


class UpstreamTimeout(HTTPError):
    pass


class BodyTooLarge(HTTPError):
    pass


class _Connection(asyncio.Protocol):
    """One connection, and the state of the exchange on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.exchanges = 0  # responses begun on it, this one included
        self._reset()

    def _reset(self) -> None:
        self.status = 0  # set when the headers are in
        self.headers: dict[str, str] = {}  # those of KEPT_HEADERS the response has
        self.framed = False  # the body's end is known from its length or chunking, not from EOF
        self.complete = False
        self.keep_alive = False
        self.error: HTTPError | None = None
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.paused = False
        self._waiter: asyncio.Future[None] | None = None

    # -- the exchange, as its caller sees it

    def send(self, head: bytes, body: bytes) -> None:
        assert self.transport is not None
        self._reset()
        self.exchanges += 1
        if self.closed:  # the server closed it between its last exchange and this one
            self.error = HTTPError("the server closed the connection")
            return
        self.transport.writelines((head, body))

    async def wait(self) -> None:
        """Until something happens: headers, body, the end, or an error."""
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def take(self) -> bytes:
        """The body bytes received so far, resuming reading if it was paused."""
        data = b"".join(self.chunks)
        self.chunks.clear()
        self.buffered = 0
        if self.paused and not self.closed:
            self.paused = False
            assert self.transport is not None
            self.transport.resume_reading()
        return data

    def fail(self, error: HTTPError) -> None:
        """End the exchange with an error; the connection cannot be trusted after it."""
        if self.error is None:
            self.error = error
        self.close()
        self._wake()

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and self.error is None and not self.closed

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.abort()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -- asyncio's side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        if self.complete:  # bytes after a whole response, which nothing asked for: not reusable
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.fail(HTTPError(f"the server's response was not valid HTTP/1.1 ({exc})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete and self.error is None:
            if self.status and not self.framed and exc is None:
                self.complete = True  # a body delimited by the end of the connection (HTTP/1.0)
            else:
                reason = f": {exc}" if exc else ""
                self.error = HTTPError(f"the server closed the connection{reason}")
        self._wake()

    def eof_received(self) -> bool:
        return False  # close our side too

    # -- httptools' callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-length" or (name == b"transfer-encoding" and b"chunked" in value.lower()):
            self.framed = True
        elif name in KEPT_HEADERS:
            self.headers[name.decode("latin-1")] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self.keep_alive = self._parser.should_keep_alive()
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > STREAM_BUFFER_BYTES and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._wake()


class Response:
    """A response whose headers are in. Read its body whole or as chunks, inside ``async with``:
    leaving gives the connection back to the pool if the exchange ended cleanly, else closes it."""

    def __init__(self, pool: ConnectionPool, connection: _Connection, deadline: asyncio.TimerHandle) -> None:
        self._pool = pool
        self._connection = connection
        self._deadline = deadline
        self.status = connection.status
        self.headers = connection.headers  # lower-case names, of KEPT_HEADERS only

    async def read(self, limit: int = MAX_BODY_BYTES) -> bytes:
        parts: list[bytes] = []
        size = 0
        while (data := await self._next()) is not None:
            size += len(data)
            if size > limit:
                error = BodyTooLarge(f"the server's response is larger than {limit} bytes")
                self._connection.fail(error)
                raise error
            parts.append(data)
        return b"".join(parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives."""
        while (data := await self._next()) is not None:
            yield data

    async def _next(self) -> bytes | None:
        """The body bytes received since the last call, waiting for some; None at the end."""
        connection = self._connection
        while True:
            if connection.chunks:
                return connection.take()
            if connection.complete:
                return None
            if connection.error is not None:
                raise connection.error
            await connection.wait()

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._deadline.cancel()
        self._pool.release(self._connection)


class ConnectionPool:
    """Keep-alive connections to one server (``http://`` or ``https://`` host and port)."""

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        *,
        max_connections: int,
        timeout_seconds: float,
        connect_timeout_seconds: float = CONNECT_TIMEOUT_SECONDS,
        keepalive_seconds: float = KEEPALIVE_SECONDS,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http:// or https:// URL: {url!r}")
        tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if tls else 80)
        self._ssl = (ssl_context or _default_tls()) if tls else None
        authority = parts.netloc.rpartition("@")[2]  # never send credentials from the URL
        self._headers = _header_block({"Host": authority, **headers})
        self._timeout = timeout_seconds
        self._connect_timeout = connect_timeout_seconds
        self._keepalive = keepalive_seconds
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Connection] = []
        self._heads: dict[str, bytes] = {}

    def _head(self, target: str) -> bytes:
        head = self._heads.get(target)
        if head is None:
            if any(c in target for c in "\r\n "):
                raise ValueError(f"not a request target: {target!r}")
            head = b"POST %s HTTP/1.1\r\n%s" % (target.encode(), self._headers)
            if len(self._heads) < 1024:  # targets come from the configuration: a handful
                self._heads[target] = head
        return head

    async def post(self, target: str, body: bytes) -> Response:
        """Send ``body`` to ``target`` (path and query) and wait for the response's headers, all
        within the pool's timeout, which goes on to cover reading the body."""
        loop = asyncio.get_running_loop()
        message = (self._head(target), b"content-length: %d\r\n\r\n%s" % (len(body), body))
        deadline = loop.time() + self._timeout
        for attempt in (1, 2):
            connection = await self._acquire(loop, deadline)
            timer = loop.call_at(deadline, connection.fail, UpstreamTimeout(
                f"no complete answer within {self._timeout:g} s"
            ))
            try:
                connection.send(*message)
                while not connection.status:
                    if connection.error is not None:
                        raise connection.error
                    await connection.wait()
            except HTTPError:
                timer.cancel()
                self.release(connection)
                # Nothing came back on a connection that had served before: the server had closed
                # it while it was idle. The request never reached it; send it on a fresh one.
                stale = connection.exchanges > 1 and not connection.status
                if attempt == 1 and stale and not isinstance(connection.error, UpstreamTimeout):
                    continue
                raise
            except BaseException:  # cancelled: the exchange is abandoned midway
                timer.cancel()
                connection.close()
                self.release(connection)
                raise
            return Response(self, connection, timer)
        raise AssertionError("unreachable")

    async def _acquire(self, loop: asyncio.AbstractEventLoop, deadline: float) -> _Connection:
        if self._slots.locked():
            try:
                async with asyncio.timeout_at(deadline):
                    await self._slots.acquire()
            except TimeoutError:
                raise UpstreamTimeout(
                    f"every one of the pool's connections stayed busy for {self._timeout:g} s"
                ) from None
        else:
            await self._slots.acquire()
        try:
            return self._reuse(loop) or await self._connect(loop)
        except BaseException:
            self._slots.release()
            raise

    def _reuse(self, loop: asyncio.AbstractEventLoop) -> _Connection | None:
        now = loop.time()
        while self._idle:
            connection = self._idle.pop()  # the most recently used: the likeliest still open
            if not connection.closed and now - connection.idle_since < self._keepalive:
                return connection
            connection.close()
        return None

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop), self.host, self.port, ssl=self._ssl
                )
        except TimeoutError:
            raise UpstreamTimeout(f"connecting took longer than {self._connect_timeout:g} s") from None
        except OSError as exc:  # ssl.SSLError is one
            raise HTTPError(_connect_failure(exc)) from None
        return connection

    def release(self, connection: _Connection) -> None:
        """Take a connection back: kept for reuse if its exchange ended cleanly, else closed."""
        if connection.reusable():
            connection.idle_since = asyncio.get_running_loop().time()
            self._idle.append(connection)
        else:
            connection.close()
        self._slots.release()

    async def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()


def _header_block(headers: Mapping[str, str]) -> bytes:
    lines = []
    for name, value in headers.items():
        if any(c in name + value for c in "\r\n\0") or ":" in name:
            raise ValueError(f"header {name!r} has a character HTTP does not allow")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("latin-1")


def _default_tls() -> ssl.SSLContext:
    """The system's trust store (SSL_CERT_FILE and SSL_CERT_DIR are honoured), HTTP/1.1 only."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


def _connect_failure(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"its TLS certificate was not trusted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"the TLS handshake failed ({exc.reason})"
    if isinstance(exc, ConnectionRefusedError):
        return "the connection was refused"
    return exc.strerror or type(exc).__name__
