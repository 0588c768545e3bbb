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
from typing import Any

import numpy as np
import orjson

from stockade import __version__
from stockade.backends import http
from stockade.backends.base import Delta, Embeddings, Events, Prepared, Usage
from stockade.config import UpstreamSettings
from stockade.errors import BackendUnavailable, UpstreamError
from stockade.quotas.estimate import approximate_prompt_tokens
from stockade.requests import ChatRequest, CompletionRequest, EmbeddingRequest

log = logging.getLogger(__name__)


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

    async def post(self, model: str, operation: str, body: dict[str, Any]) -> Any:
        try:
            async with await self.pool.post(self._target(model, operation), orjson.dumps(body)) as response:
                payload = await response.read()
                if response.status >= 400:
                    raise UpstreamError(response.status, _json_or_text(payload))
        except http.HTTPError as exc:
            raise self._unreachable(exc) from None
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise self._unreachable(http.HTTPError("its response was not JSON")) from None

    async def stream(self, model: str, operation: str, body: dict[str, Any]) -> AsyncIterator[Any]:
        try:
            async with await self.pool.post(self._target(model, operation), orjson.dumps(body)) as response:
                if response.status >= 400:
                    raise UpstreamError(response.status, _json_or_text(await response.read()))
                async for line in _lines(response.chunks()):
                    if not line.startswith(b"data:"):
                        continue
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        return
                    chunk = orjson.loads(data)
                    if isinstance(chunk, dict) and "error" in chunk:
                        raise UpstreamError(502, chunk)
                    yield chunk
        except http.HTTPError as exc:
            raise self._unreachable(exc) from None

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


def _json_or_text(payload: bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(payload)
        if isinstance(parsed, dict):
            return parsed
    except orjson.JSONDecodeError:
        pass
    return {"error": {"code": "upstream_error", "message": payload.decode(errors="replace")}}


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
        payload = await self.upstream.post(self.model, operation, body)
        for choice in payload.get("choices", []):
            message = choice.get("message")
            yield Delta(
                choice.get("index", 0),
                text=message.get("content") if message is not None else choice.get("text"),
                tool_calls=message.get("tool_calls") if message is not None else None,
                finish_reason=choice.get("finish_reason") or "stop",
                logprobs=choice.get("logprobs"),
            )
        yield _usage(payload.get("usage") or {}, payload.get("model"))

    async def _stream(self, operation: str, body: dict[str, Any]) -> Events:
        body = {**body, "stream_options": {"include_usage": True}}  # needed to meter the call
        usage = Usage(0, 0)
        async for chunk in self.upstream.stream(self.model, operation, body):
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") or {}
                text = delta.get("content") if "delta" in choice else choice.get("text")
                if text or delta.get("tool_calls") or choice.get("finish_reason"):
                    yield Delta(
                        choice.get("index", 0),
                        text=text or None,
                        tool_calls=delta.get("tool_calls"),
                        finish_reason=choice.get("finish_reason"),
                    )
            if chunk.get("usage"):
                usage = _usage(chunk["usage"], chunk.get("model"))
        yield usage

    async def embed(self, prepared: Prepared) -> Embeddings:
        forward: Forward = prepared.job
        body = {**forward.body, "encoding_format": "base64"}
        payload = await self.upstream.post(self.model, forward.operation, body)
        rows = sorted(payload["data"], key=lambda item: item["index"])
        vectors = np.stack(
            [
                np.frombuffer(base64.b64decode(row["embedding"]), dtype="<f4")
                if isinstance(row["embedding"], str)
                else np.asarray(row["embedding"], dtype="float32")
                for row in rows
            ]
        )
        return Embeddings(vectors=vectors, prompt_tokens=payload.get("usage", {}).get("prompt_tokens", 0))

    async def close(self) -> None:
        """The pool belongs to the upstream, which the registry closes."""


def _usage(raw: dict[str, Any], model: str | None) -> Usage:
    return Usage(raw.get("prompt_tokens", 0), raw.get("completion_tokens", 0), model=model)
