"""What upstreams answer: the reply shapes Stockade accepts, and their errors as Stockade's own.

Replies are validated on the way in, so that a server answering HTML, a wrong shape or a string
where a count belongs is a clean 502 instead of a broken completion or a 500 later. Errors are
re-built, never relayed: an upstream's body may hold a traceback, an internal address or a
masked key. A client error (a 4xx other than 401, 403 and 429) keeps its status and its error's
code, message, param and type, which is what the caller needs to fix its request; anything else
becomes Stockade's own error naming the upstream, with the details in the server's log only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pydantic
from pydantic import BaseModel, NonNegativeInt

from stockade.errors import BadGateway, ServiceError, TooManyRequests, UpstreamError, retry_after_ms

log = logging.getLogger(__name__)

MAX_ERROR_TEXT = 2000  # characters kept of an upstream error's message
DEFAULT_RETRY_AFTER_MS = 1000


class _Reply(BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")


class Counts(_Reply):
    prompt_tokens: NonNegativeInt = 0
    completion_tokens: NonNegativeInt = 0


class Message(_Reply):
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class Choice(_Reply):
    index: NonNegativeInt = 0
    message: Message | None = None  # chat
    text: str | None = None  # text completions
    finish_reason: str | None = None
    logprobs: dict[str, Any] | None = None


class Completion(_Reply):
    model: str | None = None
    choices: list[Choice]
    usage: Counts | None = None


class ChunkChoice(_Reply):
    index: NonNegativeInt = 0
    delta: Message | None = None  # chat
    text: str | None = None  # text completions
    finish_reason: str | None = None


class Chunk(_Reply):
    model: str | None = None
    choices: list[ChunkChoice] = []
    usage: Counts | None = None
    error: dict[str, Any] | None = None  # an error event in place of a chunk


class Embedding(_Reply):
    index: NonNegativeInt
    embedding: str | list[float]  # base64 of little-endian float32, or the numbers


class Embeddings(_Reply):
    data: list[Embedding]
    usage: Counts | None = None


class _ErrorDetail(_Reply):
    message: str
    code: str | int | None = None
    param: str | None = None
    type: str | None = None


class _ErrorEnvelope(_Reply):
    error: _ErrorDetail


def malformed(upstream: str, what: str) -> BadGateway:
    log.warning("upstream %r sent %s", upstream, what)
    return BadGateway(
        f"upstream {upstream!r} sent a reply that is not an OpenAI-compatible {what.split(':')[0]}. "
        "Retry; if it persists, ask the operator to check what runs at that upstream's URL."
    )


def refusal(upstream: str, status: int, headers: Mapping[str, str], payload: bytes) -> ServiceError:
    """Stockade's own error for an upstream's error reply."""
    if status in (401, 403):
        log.warning("upstream %r refused Stockade's credentials (HTTP %d)", upstream, status)
        return BadGateway(
            f"upstream {upstream!r} refused Stockade's credentials for it (HTTP {status}); the "
            "key you called Stockade with is not the problem. Ask the operator to check that "
            "upstream's api_key in Stockade's configuration."
        )
    if status == 429:
        return TooManyRequests(
            f"upstream {upstream!r} is limiting the rate of Stockade's calls to it. Retry after "
            "the time given.",
            retry_after_ms=retry_after_ms(headers, default=DEFAULT_RETRY_AFTER_MS),
            reason="upstream",
        )
    detail = _error_detail(payload)
    if 400 <= status < 500 and detail is not None:
        return UpstreamError(
            status,
            detail.message[:MAX_ERROR_TEXT],
            code=None if detail.code is None else str(detail.code)[:100],
            param=None if detail.param is None else detail.param[:100],
            type=None if detail.type is None else detail.type[:100],
        )
    log.warning("upstream %r answered HTTP %d%s", upstream, status,
                f" ({str(detail.code)[:100]})" if detail is not None and detail.code else "")
    return BadGateway(
        f"upstream {upstream!r} failed to answer (HTTP {status}). Retry; if it persists, the "
        "server's log has the details for the operator."
    )


def _error_detail(payload: bytes) -> _ErrorDetail | None:
    try:
        return _ErrorEnvelope.model_validate_json(payload).error
    except pydantic.ValidationError:
        return None

