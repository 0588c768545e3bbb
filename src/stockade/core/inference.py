"""Chat, text completion and embeddings on a deployment: pick the model, run it, meter it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

from stockade.backends.base import ChatModel, Delta, EmbeddingModel, Usage
from stockade.backends.registry import ModelRegistry
from stockade.core import bodies
from stockade.errors import InvalidRequest
from stockade.requests import ChatRequest, CompletionRequest, EmbeddingRequest
from stockade.store import Deployment
from stockade.telemetry import Call

Chunks = AsyncIterator[dict[str, Any]]


class Inference:
    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry

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

    async def generate(
        self, deployment: Deployment, request: ChatRequest | CompletionRequest, call: Call
    ) -> dict[str, Any] | Chunks:
        """A chat or text completion: the whole body, or its chunks when the request streams."""
        chat = isinstance(request, ChatRequest)
        model = cast(
            ChatModel, await self._model(deployment, "chat", "chatCompletion" if chat else "completion")
        )
        if request.stream:
            stream = model.chat_stream(request) if chat else model.complete_stream(request)  # type: ignore[arg-type]
            writer = bodies.ChunkWriter(deployment.model, chat=chat, include_usage=request.include_usage)
            return await _primed(self._chunks(stream, writer, call))
        result = await (model.chat(request) if chat else model.complete(request))  # type: ignore[arg-type]
        self._meter(call, result.usage)
        build = bodies.chat_completion if chat else bodies.text_completion
        return build(result, deployment.model)

    async def embed(
        self, deployment: Deployment, request: EmbeddingRequest, call: Call
    ) -> dict[str, Any]:
        model = cast(EmbeddingModel, await self._model(deployment, "embeddings", "embeddings"))
        result = await model.embed(request)
        self._meter(call, Usage(result.prompt_tokens))
        return bodies.embeddings(result, deployment.model, request.encoding_format)

    async def _chunks(
        self,
        stream: AsyncIterator[Delta | Usage],
        writer: bodies.ChunkWriter,
        call: Call,
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
