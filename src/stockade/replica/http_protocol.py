"""uvicorn's httptools protocol with limits on every connection, enforced before a request reaches
the application, and so before authentication.

uvicorn with httptools limits neither the size of a request head nor the time a client takes to
send it or its body: a client could make the server buffer a 100 MiB header (httptools
concatenates a header's pieces in Python until it ends), or hold connections open forever by
sending slowly or by promising a longer body than it sends. This protocol adds, at the cost of a
few attribute updates per request and no timer at all when a request arrives whole:

- a cap on the request head: bytes are counted as they are read, and past the cap the client gets
  431 and the connection is closed, without buffering more;
- a deadline for the whole head (from the connection's start, or from a keep-alive request's
  first byte), as nginx's ``client_header_timeout``;
- a limit on the pause between two reads of a body, as nginx's ``client_body_timeout``;
- a cap on open connections (or requests in progress) per process, answered with 503.

Every refusal is in Azure's error envelope. The settings are ``Settings.connections``
(``config.ConnectionSettings``); uvicorn's own keep-alive timeout covers idle connections between
requests.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Any

import httptools
import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from stockade.config import ConnectionSettings

# After a refusal, what the client still sends is read and dropped for a moment, so that it reads
# the refusal rather than a reset: closing a socket with unread data sends RST, which can destroy
# the reply before the client reads it (nginx's lingering close does the same). A client that
# keeps sending past either bound is cut off.
LINGER_SECONDS = 1.0
LINGER_BYTES = 1024 * 1024


def reply(status: int, code: str, message: str) -> bytes:
    """A whole HTTP response in Azure's error envelope, ending the connection."""
    body = orjson.dumps({"error": {"code": code, "message": message}})
    return b"".join([
        STATUS_LINE[status],
        b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body),
        body,
    ])


@dataclass(frozen=True)
class ConnectionLimits:
    """The limits and their refusals, made once per process (picklable, for uvicorn's workers)."""

    max_head_bytes: int
    head_timeout: float
    body_timeout: float
    max_connections: int
    head_too_large: bytes
    timed_out: bytes
    busy: bytes
    malformed: bytes

    @classmethod
    def of(cls, settings: ConnectionSettings) -> ConnectionLimits:
        return cls(
            max_head_bytes=settings.max_header_bytes,
            head_timeout=settings.header_timeout_seconds,
            body_timeout=settings.body_timeout_seconds,
            max_connections=settings.max_connections,
            head_too_large=reply(
                431, "RequestHeaderFieldsTooLarge",
                f"The request line and headers exceed {settings.max_header_bytes} bytes.",
            ),
            timed_out=reply(408, "RequestTimeout", "The request was not received in time."),
            busy=reply(503, "ServiceUnavailable", "The server has too many connections; retry later."),
            malformed=reply(400, "BadRequest", "Invalid HTTP request received."),
        )


def protocol_class(settings: ConnectionSettings) -> functools.partial[LimitedHttpToolsProtocol]:
    """What uvicorn's ``http`` option takes: it calls it with ``config``, ``server_state`` and
    ``app_state``. A partial of a module-level class, so that it pickles into ``--workers N``'s
    worker processes."""
    return functools.partial(LimitedHttpToolsProtocol, limits=ConnectionLimits.of(settings))


class _Refused(Exception):
    """Raised from a parser callback to stop httptools once the connection has been answered."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: ConnectionLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self.limit_concurrency = None  # uvicorn's own check answers in plain text; ours replaces it
        # What the connection is waiting for: a request head, or the rest of a body (neither while
        # the application works on a whole request).
        self.awaiting_head = True
        self.awaiting_body = False
        self.head_bytes = 0  # read since the current head began, perhaps with some body after it
        self.last_read = 0.0
        self.head_timer: asyncio.TimerHandle | None = None
        self.body_timer: asyncio.TimerHandle | None = None
        self.refused = False
        self.dropped = 0  # bytes read and dropped after a refusal

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A client that connects and sends nothing is a slow head too.
        self.head_timer = self.loop.call_later(self.limits.head_timeout, self.head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self.cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            self.dropped += len(data)
            if self.dropped > LINGER_BYTES:
                self.transport.close()
            return
        self._unset_keepalive_if_required()
        if self.awaiting_head:
            self.head_bytes += len(data)
        elif self.body_timer is not None:
            self.last_read = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            if not self.refused:  # else a callback of ours stopped the parser, having answered
                self.logger.warning("Invalid HTTP request received.")
                self.refuse(self.limits.malformed, before_next_request=True)
            return
        if self.awaiting_head:
            # The head is still incomplete: past the cap, nothing more of it is buffered.
            if self.head_bytes > self.limits.max_head_bytes:
                self.refuse(self.limits.head_too_large, before_next_request=True)
            elif self.head_timer is None:  # a keep-alive request's head, arriving in pieces
                self.head_timer = self.loop.call_later(self.limits.head_timeout, self.head_timed_out)
        elif self.awaiting_body and self.body_timer is None:
            self.last_read = self.loop.time()
            self.body_timer = self.loop.call_later(self.limits.body_timeout, self.body_timed_out)

    def on_headers_complete(self) -> None:
        # head_bytes may include body bytes read with the head: only then is the head measured.
        if self.head_bytes > self.limits.max_head_bytes and self.head_size() > self.limits.max_head_bytes:
            self.refuse(self.limits.head_too_large, before_next_request=True)
            raise _Refused
        if len(self.connections) > self.limits.max_connections or len(self.tasks) >= self.limits.max_connections:
            self.logger.warning("Exceeded the connection limit (%d).", self.limits.max_connections)
            self.refuse(self.limits.busy, before_next_request=True)
            raise _Refused
        self.awaiting_head = False
        self.awaiting_body = True
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.awaiting_body = False
        self.awaiting_head = True
        self.head_bytes = 0
        if self.body_timer is not None:
            self.body_timer.cancel()
            self.body_timer = None

    def head_size(self) -> int:
        """The current head's size as parsed so far (the request line roughly)."""
        return len(self.url) + 16 + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def head_timed_out(self) -> None:
        self.head_timer = None
        if self.transport.is_closing() or not self.awaiting_head:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head arriving slowly while a response is under way: finish that
            # response, then close.
            self.cycle.keep_alive = False
            return
        if self.head_bytes:
            self.refuse(self.limits.timed_out, before_next_request=True)
        else:  # nothing was asked: there is no one to answer (a preconnected socket, perhaps)
            self.transport.close()

    def body_timed_out(self) -> None:
        self.body_timer = None
        if self.transport.is_closing() or not self.awaiting_body:
            return
        now = self.loop.time()
        if self.flow.read_paused:
            # Reading is paused by uvicorn (the application has not taken what was read, or a
            # pipelined request waits its turn): the client is not the one stalling.
            self.last_read = now
        idle = now - self.last_read
        if idle < self.limits.body_timeout:
            self.body_timer = self.loop.call_later(self.limits.body_timeout - idle, self.body_timed_out)
            return
        self.refuse(self.limits.timed_out, before_next_request=False)

    def refuse(self, answer: bytes, *, before_next_request: bool) -> None:
        """Answer and close. ``before_next_request``: the refusal concerns a request after the
        current one, so it is sent only if no earlier response is unfinished; otherwise it
        concerns the current request, answered only if its response has not started."""
        self.refused = True
        self.cancel_timers()
        cycle = self.cycle
        if before_next_request:
            may_answer = cycle is None or cycle.response_complete
        else:
            may_answer = cycle is not None and not cycle.response_started
        if cycle is not None and not cycle.response_complete:
            # The application gets http.disconnect from receive(), and its sends are dropped.
            cycle.disconnected = True
            cycle.message_event.set()
        if self.transport.is_closing():
            return
        if not may_answer:
            self.transport.close()
            return
        self.transport.write(answer)
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the client's end of file closes the transport
            self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:  # TLS: no half close
            self.transport.close()

    def cancel_timers(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None
        if self.body_timer is not None:
            self.body_timer.cancel()
            self.body_timer = None
