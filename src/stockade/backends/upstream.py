"""Models served by another OpenAI-compatible server: vLLM, llama-server, Ollama, OpenAI or Azure.

One pool of keep-alive connections per upstream (backends/http.py); streams are relayed chunk by
chunk.
"""

from __future__ import annotations

import base64
import logging
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import orjson
import pydantic

from stockade import __version__
from stockade.backends import http
from stockade.backends import upstream_replies as replies
from stockade.backends.base import Delta, Embeddings, Events, Prepared, Usage
from stockade.config import UpstreamSettings
from stockade.errors import BackendUnavailable, BadGateway
from stockade.quotas.estimate import approximate_prompt_tokens
from stockade.requests import ChatRequest, CompletionRequest, EmbeddingRequest

log = logging.getLogger(__name__)
R = TypeVar("R", bound=pydantic.BaseModel)


class Upstream:
    """A connection pool to one upstream server, shared by every model deployed from it."""

    def __init__(self, name: str, settings: UpstreamSettings) -> None:
        self.name = name
        self.settings = settings
        self._pool: http.ConnectionPool | None = None
        self._headers = {"Content-Type": "application/json", "User-Agent": f"stockade/{__version__}"}
        key = settings.api_key.get_secret_value() if settings.api_key else None
        if key and settings.kind == "azure":
            self._headers["api-key"] = key
        elif key:
            self._headers["Authorization"] = f"Bearer {key}"
        self._base = urllib.parse.urlsplit(settings.url.rstrip("/"))
        self._targets: dict[tuple[str, str], str] = {}

    def _target(self, model: str, operation: str) -> str:
        """The request's path and query, built once per model and operation."""
        target = self._targets.get((model, operation))
        if target is None:
            path = self._base.path
            if self.settings.kind == "azure":
                if not path.endswith("/openai"):
                    path += "/openai"
                query = urllib.parse.urlencode({"api-version": self.settings.api_version})
                target = f"{path}/deployments/{urllib.parse.quote(model, safe='')}/{operation}?{query}"
            else:
                target = f"{path}/{operation}"
            self._targets[(model, operation)] = target
        return target

    @property
    def pool(self) -> http.ConnectionPool:
        # Made on first use, inside the event loop that serves.
        if self._pool is None:
            self._pool = http.ConnectionPool(
                self.settings.url,
                self._headers,
                max_connections=self.settings.max_connections,
                timeout_seconds=self.settings.timeout_seconds,
            )
        return self._pool

    async def post(self, model: str, operation: str, body: dict[str, Any], reply: type[R]) -> R:
        """The upstream's reply, validated as ``reply``."""
        try:
            async with await self.pool.post(self._target(model, operation), orjson.dumps(body)) as response:
                payload = await response.read()
                if response.status >= 400:
                    raise replies.refusal(self.name, response.status, response.headers, payload)
        except http.HTTPError as exc:
            raise self._unreachable(exc) from None
        try:
            return reply.model_validate_json(payload)
        except pydantic.ValidationError as invalid:
            raise replies.malformed(self.name, f"{operation} reply: {_first(invalid)}") from None

    async def stream(self, model: str, operation: str, body: dict[str, Any]) -> AsyncIterator[replies.Chunk]:
        """The chunks of a streamed reply, validated; an error event or a reply with no events
        at all is an error."""
        events = 0
        try:
            async with await self.pool.post(self._target(model, operation), orjson.dumps(body)) as response:
                if response.status >= 400:
                    raise replies.refusal(self.name, response.status, response.headers, await response.read())
                if not response.headers.get("content-type", "").startswith("text/event-stream"):
                    raise replies.malformed(self.name, f"{operation} stream: not text/event-stream")
                async for line in _lines(response.chunks()):
                    if not line.startswith(b"data:"):
                        continue
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        return
                    events += 1
                    yield self._chunk(operation, data)
        except http.HTTPError as exc:
            raise self._unreachable(exc) from None
        if not events:
            raise replies.malformed(self.name, f"{operation} stream: no events")

    def _chunk(self, operation: str, data: bytes) -> replies.Chunk:
        try:
            chunk = replies.Chunk.model_validate_json(data)
        except pydantic.ValidationError as invalid:
            raise replies.malformed(self.name, f"{operation} stream: {_first(invalid)}") from None
        if chunk.error is not None:
            log.warning("upstream %r sent an error event mid-stream", self.name)
            raise BadGateway(
                f"upstream {self.name!r} failed while streaming its answer. Retry; if it "
                "persists, the server's log has the details for the operator."
            )
        return chunk

    def _unreachable(self, exc: http.HTTPError) -> BackendUnavailable:
        # The operator's log gets the address; the caller only the upstream's name.
        log.warning("upstream %r at %s: %s", self.name, self.settings.url, exc)
        return BackendUnavailable(
            f"upstream {self.name!r} could not be reached or broke off ({exc}). If this persists, "
            "ask the operator to check that it is running and that its URL in the configuration "
            "is right; the server's log has the details."
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()


async def _lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Server-sent events' lines, however the body was cut into chunks."""
    pending = b""
    async for chunk in chunks:
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            yield line
    if pending:
        yield pending


def _first(invalid: pydantic.ValidationError) -> str:
    """The first problem, for the server's log: where it is, never the value found there."""
    error = invalid.errors(include_url=False, include_input=False)[0]
    return f"{'.'.join(str(part) for part in error['loc']) or 'the body'}: {error['msg']}"


@dataclass(frozen=True, slots=True)
class Forward:
    """A prepared upstream call: the operation's path and the JSON body to send."""

    operation: str
    body: dict[str, Any]


_OPERATIONS = {
    ChatRequest: "chat/completions",
    CompletionRequest: "completions",
    EmbeddingRequest: "embeddings",
}


class UpstreamModel:
    """A chat or embedding model behind an upstream; implements both interfaces.

    A prepared request is the JSON body to forward, built once; its prompt size is an estimate
    (the upstream's tokenizer is not here), corrected when the upstream reports its usage."""

    def __init__(self, upstream: Upstream, model: str) -> None:
        self.upstream = upstream
        self.model = model

    async def start(self) -> None:
        """Nothing to load: the upstream's connection pool opens on first use."""

    async def prepare(self, request: ChatRequest | CompletionRequest | EmbeddingRequest) -> Prepared:
        body = request.model_dump(exclude_none=True, by_alias=True)
        body["model"] = self.model
        return Prepared(approximate_prompt_tokens(request), Forward(_OPERATIONS[type(request)], body))

    def generate(self, prepared: Prepared) -> Events:
        forward: Forward = prepared.job
        if forward.body.get("stream"):
            return self._stream(forward.operation, forward.body)
        return self._whole(forward.operation, forward.body)

    async def _whole(self, operation: str, body: dict[str, Any]) -> Events:
        reply = await self.upstream.post(self.model, operation, body, replies.Completion)
        for choice in reply.choices:
            message = choice.message
            yield Delta(
                choice.index,
                text=message.content if message is not None else choice.text,
                tool_calls=message.tool_calls if message is not None else None,
                finish_reason=choice.finish_reason or "stop",
                logprobs=choice.logprobs,
            )
        yield _usage(reply.usage, reply.model)

    async def _stream(self, operation: str, body: dict[str, Any]) -> Events:
        body = {**body, "stream_options": {"include_usage": True}}  # needed to meter the call
        usage = Usage(0, 0)
        async for chunk in self.upstream.stream(self.model, operation, body):
            for choice in chunk.choices:
                delta = choice.delta
                text = delta.content if delta is not None else choice.text
                tool_calls = delta.tool_calls if delta is not None else None
                if text or tool_calls or choice.finish_reason:
                    yield Delta(
                        choice.index,
                        text=text or None,
                        tool_calls=tool_calls,
                        finish_reason=choice.finish_reason,
                    )
            if chunk.usage is not None:
                usage = _usage(chunk.usage, chunk.model)
        yield usage

    async def embed(self, prepared: Prepared) -> Embeddings:
        forward: Forward = prepared.job
        body = {**forward.body, "encoding_format": "base64"}
        reply = await self.upstream.post(self.model, forward.operation, body, replies.Embeddings)
        rows = sorted(reply.data, key=lambda item: item.index)
        try:
            vectors = np.stack([_vector(row.embedding) for row in rows])
        except ValueError:  # ragged rows, or base64 that is not whole float32s
            raise replies.malformed(self.upstream.name, "embeddings reply: vectors of different sizes") from None
        return Embeddings(vectors=vectors, prompt_tokens=reply.usage.prompt_tokens if reply.usage else 0)

    async def close(self) -> None:
        """The pool belongs to the upstream, which the registry closes."""


def _usage(counts: replies.Counts | None, model: str | None) -> Usage:
    if counts is None:
        return Usage(0, 0, model=model)
    return Usage(counts.prompt_tokens, counts.completion_tokens, model=model)


def _vector(embedding: str | list[float]) -> np.ndarray[Any, np.dtype[np.float32]]:
    if isinstance(embedding, str):
        return np.frombuffer(base64.b64decode(embedding), dtype="<f4")
    return np.asarray(embedding, dtype="float32")
