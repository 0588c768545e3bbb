"""Turning core results and errors into HTTP responses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from starlette.responses import Response, StreamingResponse

from stockade.errors import ServiceError

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


def error_response(error: ServiceError) -> Response:
    return json_response(error.body(), error.status, error.headers)


def event_stream(chunks: AsyncIterator[dict[str, Any]]) -> StreamingResponse:
    return StreamingResponse(_sse(chunks), media_type="text/event-stream", headers=SSE_HEADERS)


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
