"""Chat, text completion and embeddings on a deployment: pick the model, admit, run, meter."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any, cast

from stockade.access import Principal
from stockade.backends.base import ChatModel, Delta, EmbeddingModel, Usage
from stockade.backends.registry import ModelRegistry
from stockade.core import bodies
from stockade.errors import InvalidRequest, TooManyRequests
from stockade.quotas import Bucket, Limit, Limiter, Reservation, reserved_tokens
from stockade.requests import ChatRequest, CompletionRequest, EmbeddingRequest
from stockade.store import Deployment
from stockade.telemetry import Call, metrics

Chunks = AsyncIterator[dict[str, Any]]


@functools.lru_cache(maxsize=4096)
def buckets(deployment: Deployment, principal: Principal) -> tuple[Bucket, ...]:
    """The limits a call draws on: its deployment's, and its key's if the key has one.

    Cached: both arguments are immutable, and a changed deployment or key is a new value."""
    drawn = [
        Bucket(
            f"d:{deployment.name}",
            Limit.for_capacity(deployment.capacity),
            f"deployment {deployment.name!r}",
            "To raise it, give the deployment more capacity "
            f"(`stockade deployments update {deployment.name} --capacity N`).",
        )
    ]
    if principal.limit is not None:
        drawn.append(
            Bucket(
                f"k:{principal.id}",
                principal.limit,
                f"API key {principal.name!r}",
                f"To raise it, change the key's limits (`stockade keys update {principal.id}`).",
            )
        )
    return tuple(drawn)


class Inference:
    def __init__(self, registry: ModelRegistry, limiter: Limiter, default_max_tokens: int) -> None:
        self.registry = registry
        self.limiter = limiter
        self.default_max_tokens = default_max_tokens

    async def _model(self, deployment: Deployment, kind: str, operation: str) -> Any:
        spec = self.registry.spec(deployment.backend, deployment.model)
        if spec is None:
            raise InvalidRequest(
                f"The model {deployment.model!r} of this deployment is no longer available from "
                f"backend {deployment.backend!r}; update the deployment to a model that "
                "`stockade models list` shows.",
                code="DeploymentModelUnavailable",
            )
        if spec.kind != kind:
            raise InvalidRequest(
                f"The {operation} operation does not work with the specified model, "
                f"{deployment.model}. Please choose different model and try again.",
                code="OperationNotSupported",
            )
        return await self.registry.get(deployment.backend, deployment.model)

    @staticmethod
    def _meter(call: Call, usage: Usage) -> None:
        call.prompt_tokens = usage.prompt_tokens
        call.completion_tokens = usage.completion_tokens

    async def _admit(
        self,
        model: ChatModel | EmbeddingModel,
        deployment: Deployment,
        request: ChatRequest | CompletionRequest | EmbeddingRequest,
        call: Call,
        principal: Principal,
    ) -> Reservation:
        prompt_tokens = await model.prompt_tokens(request)  # type: ignore[arg-type]
        cost = reserved_tokens(request, prompt_tokens, self.default_max_tokens)
        try:
            reservation = await self.limiter.reserve(
                buckets(deployment, principal), cost, call.operation
            )
        except TooManyRequests:
            metrics.RATE_LIMIT_DECISIONS.labels(deployment.name, "throttled").inc()
            raise
        metrics.RATE_LIMIT_DECISIONS.labels(deployment.name, "admitted").inc()
        call.remaining_tokens = reservation.remaining.tokens
        call.remaining_requests = reservation.remaining.requests
        return reservation

    async def _settle(self, reservation: Reservation, call: Call) -> None:
        """Correct the reservation to the tokens the call really used (0 if it failed early);
        settling again, as a stream that fails at its first item does, changes nothing."""
        await self.limiter.settle(reservation, call.prompt_tokens + call.completion_tokens)

    async def generate(
        self,
        deployment: Deployment,
        request: ChatRequest | CompletionRequest,
        call: Call,
        principal: Principal,
    ) -> dict[str, Any] | Chunks:
        """A chat or text completion: the whole body, or its chunks when the request streams."""
        chat = isinstance(request, ChatRequest)
        model = cast(
            ChatModel, await self._model(deployment, "chat", "chatCompletion" if chat else "completion")
        )
        reservation = await self._admit(model, deployment, request, call, principal)
        try:
            if request.stream:
                stream = model.chat_stream(request) if chat else model.complete_stream(request)  # type: ignore[arg-type]
                writer = bodies.ChunkWriter(deployment.model, chat=chat, include_usage=request.include_usage)
                # The stream settles the reservation when it ends, however it ends.
                return await _primed(self._chunks(stream, writer, call, reservation))
            result = await (model.chat(request) if chat else model.complete(request))  # type: ignore[arg-type]
        except BaseException:
            await self._settle(reservation, call)
            raise
        self._meter(call, result.usage)
        await self._settle(reservation, call)
        build = bodies.chat_completion if chat else bodies.text_completion
        return build(result, deployment.model)

    async def embed(
        self, deployment: Deployment, request: EmbeddingRequest, call: Call, principal: Principal
    ) -> dict[str, Any]:
        model = cast(EmbeddingModel, await self._model(deployment, "embeddings", "embeddings"))
        reservation = await self._admit(model, deployment, request, call, principal)
        try:
            result = await model.embed(request)
            self._meter(call, Usage(result.prompt_tokens))
        finally:
            await self._settle(reservation, call)
        return bodies.embeddings(result, deployment.model, request.encoding_format)

    async def _chunks(
        self,
        stream: AsyncIterator[Delta | Usage],
        writer: bodies.ChunkWriter,
        call: Call,
        reservation: Reservation,
    ) -> Chunks:
        try:
            async for item in stream:
                if isinstance(item, Usage):
                    self._meter(call, item)
                    if item.final and (chunk := writer.usage(item)) is not None:
                        yield chunk
                    continue
                if item.text or item.tool_calls:
                    call.completion_tokens += 1  # an estimate until the final count arrives
                for chunk in writer.delta(item):
                    yield chunk
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
            await self._settle(reservation, call)


async def _primed(chunks: Chunks) -> Chunks:
    """Run a stream up to its first chunk, so that errors surface before any byte is sent."""
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = None

    async def replay() -> Chunks:
        try:
            if first is not None:
                yield first
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]

    return replay()
