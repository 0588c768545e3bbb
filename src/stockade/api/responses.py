"""Turning core results and errors into HTTP responses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from starlette.responses import Response, StreamingResponse
from starlette.types import Send

from stockade.errors import ServiceError
from stockade.quotas import Remaining

_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def json_response(
    content: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(content, option=_JSON_OPTIONS),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


async def send_json(send: Send, content: Any, headers: Mapping[str, str]) -> None:
    """A 200 JSON answer written straight to the connection: what ``json_response`` sends, without
    a Response object, for the data plane's calls."""
    body = orjson.dumps(content, option=_JSON_OPTIONS)
    raw = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    raw += [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    await send({"type": "http.response.start", "status": 200, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def error_response(error: ServiceError) -> Response:
    headers = None
    if error.retry_after_ms is not None:
        # The retry hints the openai SDK obeys: it reads retry-after-ms first, and sleeps exactly
        # that long when it is at most 120 seconds.
        headers = {
            "retry-after": str(-(-error.retry_after_ms // 1000)),
            "retry-after-ms": str(error.retry_after_ms),
        }
    if error.should_retry is not None:
        headers = {**(headers or {}), "x-should-retry": "true" if error.should_retry else "false"}
    return json_response(error.body(), error.status, headers)


def http_error_response(
    status: int, detail: str, headers: Mapping[str, str] | None = None
) -> Response:
    """A plain HTTP error (no route, wrong method) in Azure's envelope."""
    return json_response({"error": {"code": str(status), "message": detail}}, status, headers)


def rate_limit_headers(remaining: Remaining) -> dict[str, str]:
    """What the limits still allow after a call was admitted (x-ratelimit-remaining-*)."""
    headers = {}
    if remaining.tokens is not None:
        headers["x-ratelimit-remaining-tokens"] = str(remaining.tokens)
    if remaining.requests is not None:
        headers["x-ratelimit-remaining-requests"] = str(remaining.requests)
    return headers


def event_stream(
    chunks: AsyncIterator[dict[str, Any]], headers: dict[str, str] | None = None, *, typed: bool = False
) -> StreamingResponse:
    """Server-sent events of ``chunks``. ``typed``: the Responses API's events, each named by its
    ``type`` in an ``event:`` line and with no ``[DONE]`` after the last (its terminal events end
    it); they report their own errors."""
    return StreamingResponse(
        _typed_sse(chunks) if typed else _sse(chunks), media_type="text/event-stream",
        headers={**SSE_HEADERS, **(headers or {})},
    )


async def _sse(chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    try:
        async for chunk in chunks:
            yield b"data: " + orjson.dumps(chunk, option=_JSON_OPTIONS) + b"\n\n"
    except ServiceError as error:
        # Headers are gone already; the SDK raises APIError on an "error" event.
        yield b"data: " + orjson.dumps(error.body()) + b"\n\n"
        return
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
    yield b"data: [DONE]\n\n"


async def _typed_sse(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield (b"event: " + event["type"].encode() + b"\ndata: "
                   + orjson.dumps(event, option=_JSON_OPTIONS) + b"\n\n")
    finally:
        await events.aclose()  # type: ignore[attr-defined]
