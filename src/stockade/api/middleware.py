"""One ASGI middleware for every request: request ids, errors as Azure envelopes, and what is
recorded of each call (usage, metrics, the diagnostic log, traces).

It is pure ASGI (no BaseHTTPMiddleware) because it sits on the hot path.
"""

from __future__ import annotations

import logging
import random
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stockade.access import Principal
from stockade.api.credentials import PRINCIPAL_STATE_KEY
from stockade.api.responses import error_response
from stockade.errors import InvalidRequest, ServiceError
from stockade.telemetry import Call, DiagnosticLog, UsageRecorder, metrics
from stockade.telemetry.diagnostics import Entry
from stockade.telemetry.tracing import Tracing, error_type
from stockade.tracebacks import without_messages

log = logging.getLogger(__name__)

CLIENT_CLOSED_REQUEST = 499
# Where a data-plane handler leaves the ServiceError it answered with (api/inference.py), for the
# metrics' 429 reasons and the traces' error.type.
ERROR_STATE_KEY = "error"
EVENT_STREAM = b"text/event-stream"
UNPRINTABLE_PATH = InvalidRequest(
    "The URL path holds a control or other unprintable character (after percent-decoding); no "
    "route or name here has one. Check how the client builds the URL."
)


class CallMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        usage: UsageRecorder,
        diagnostics: DiagnosticLog | None,
        tracing: Tracing | None = None,
    ) -> None:
        self.app = app
        self.usage = usage
        self.diagnostics = diagnostics
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # A version-4 UUID, as Azure's are; from the random module, as completion ids are
        # (core/bodies.py): unique, not secret, and no system call per request.
        request_id = str(uuid.UUID(int=random.getrandbits(128), version=4))
        call = Call(request_id)
        state = scope.setdefault("state", {})
        state["call"] = call
        id_headers = [(b"x-request-id", request_id.encode()), (b"apim-request-id", request_id.encode())]
        status = 500
        started = finished = streamed = False
        traced = None if self.tracing is None else self.tracing.start_call(scope)

        async def send_with_ids(message: Message) -> None:
            nonlocal status, started, finished, streamed
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = list(message.get("headers", ()))
                if self.diagnostics is not None:  # only the log says whether a reply streamed
                    streamed = any(n == b"content-type" and v.startswith(EVENT_STREAM) for n, v in headers)
                message["headers"] = headers + id_headers
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finished = True
                self._finished(scope, call, status, streamed)
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
                status = CLIENT_CLOSED_REQUEST
                self._finished(scope, call, status, streamed)
            if traced is not None:
                error = state.get(ERROR_STATE_KEY)
                Tracing.end_call(
                    *traced, status=status, operation=call.operation, deployment=call.deployment,
                    model=call.model, prompt_tokens=call.prompt_tokens,
                    completion_tokens=call.completion_tokens,
                    error=None if error is None else error_type(error),
                )

    def _finished(self, scope: Scope, call: Call, status: int, streamed: bool) -> None:
        principal: Principal | None = scope["state"].get(PRINCIPAL_STATE_KEY)
        if call.operation != "unknown":
            self.usage.add(call.record(status))
            self._count(scope, call, status, metrics.key_label(principal))
        if self.diagnostics is not None:
            self.diagnostics.add(Entry(
                time.time(), scope.get("client"), scope["method"], scope["path"], call.operation,
                status, call.elapsed_ms(), call.request_id, call.deployment, call.model,
                None if principal is None else principal.name,
                None if principal is None else principal.id,
                call.prompt_tokens, call.completion_tokens, streamed,
            ))

    @staticmethod
    def _count(scope: Scope, call: Call, status: int, key: str) -> None:
        metrics.answered(
            call.deployment, call.model, key, call.operation, status, call.elapsed_ms() / 1000,
            call.prompt_tokens, call.completion_tokens,
        )
        if status == 429:
            error = scope["state"].get(ERROR_STATE_KEY)
            reason = error.reason if isinstance(error, ServiceError) else "other"
            metrics.throttled(call.deployment or metrics.OTHER, key, reason).inc()
