"""One ASGI middleware for every request: request ids, errors as Azure envelopes, usage records.

It is pure ASGI (no BaseHTTPMiddleware) because it sits on the hot path.
"""

from __future__ import annotations

import logging
import random
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stockade.api.responses import error_response
from stockade.errors import InvalidRequest, ServiceError
from stockade.telemetry import AccessLog, Call, UsageRecorder
from stockade.tracebacks import without_messages

log = logging.getLogger(__name__)

CLIENT_CLOSED_REQUEST = 499
UNPRINTABLE_PATH = InvalidRequest(
    "The URL path holds a control or other unprintable character (after percent-decoding); no "
    "route or name here has one. Check how the client builds the URL."
)


class CallMiddleware:
    def __init__(self, app: ASGIApp, usage: UsageRecorder, access_log: AccessLog | None) -> None:
        self.app = app
        self.usage = usage
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # A version-4 UUID, as Azure's are; from the random module, as completion ids are
        # (core/bodies.py): unique, not secret, and no system call per request.
        request_id = str(uuid.UUID(int=random.getrandbits(128), version=4))
        call = Call(request_id)
        scope.setdefault("state", {})["call"] = call
        id_headers = [(b"x-request-id", request_id.encode()), (b"apim-request-id", request_id.encode())]
        status = 500
        started = finished = False

        async def send_with_ids(message: Message) -> None:
            nonlocal status, started, finished
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message["headers"] = list(message.get("headers", ())) + id_headers
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finished = True
                self._finished(scope, call, status)
            await send(message)

        try:
            if scope["path"].isprintable():
                await self.app(scope, receive, send_with_ids)
            else:
                # Starlette's route patterns end in `$`, which matches before a final newline:
                # `/deployments/dep%0A` would reach the handler as `dep`.
                await error_response(UNPRINTABLE_PATH)(scope, receive, send_with_ids)
        except Exception as exc:
            if started:
                raise
            log.error(
                "unhandled error in %s %s (request id %s)\n%s",
                scope["method"], scope["path"], request_id, without_messages(exc),
            )
            error = ServiceError(
                f"The server had an error while processing your request (request id "
                f"{request_id}). Retry, and report the request id if it persists."
            )
            error.__cause__ = exc
            await error_response(error)(scope, receive, send_with_ids)
        finally:
            if started and not finished:
                # The client went away mid-response (nginx's 499): meter what was generated.
                self._finished(scope, call, CLIENT_CLOSED_REQUEST)

    def _finished(self, scope: Scope, call: Call, status: int) -> None:
        if call.operation != "unknown":
            self.usage.add(call.record(status))
        if self.access_log is not None:
            self.access_log.add(
                scope.get("client"), scope["method"], scope["path"], status, call.elapsed_ms(),
                call.request_id,
            )
