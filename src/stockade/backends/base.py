"""The small interface every model backend implements, and the values it returns.

A backend is either a chat model (chat and legacy text completions) or an embedding model.
Streaming yields ``Delta`` items and, last, one ``Usage``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import numpy as np

    from stockade.config import Settings
    from stockade.requests import ChatRequest, CompletionRequest, EmbeddingRequest


@dataclass(slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int = 0
    # A stream may report its prompt size early (final=False), so that a call the client abandons
    # midway is still metered; the final report closes the stream.
    final: bool = True


@dataclass(slots=True)
class Choice:
    index: int
    text: str | None
    finish_reason: str
    tool_calls: list[dict[str, Any]] | None = None
    logprobs: dict[str, Any] | None = None


@dataclass(slots=True)
class Completion:
    choices: list[Choice]
    usage: Usage
    model: str | None = None  # the serving model's own name, when an upstream reports one


@dataclass(slots=True)
class Delta:
    index: int
    text: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    finish_reason: str | None = None


@dataclass(slots=True)
class Embeddings:
    vectors: np.ndarray  # float32, one row per input
    prompt_tokens: int


class ChatModel(Protocol):
    async def prompt_tokens(self, request: ChatRequest | CompletionRequest) -> int:
        """The prompt's size in tokens, for admission before the call runs."""
        ...

    async def chat(self, request: ChatRequest) -> Completion: ...

    def chat_stream(self, request: ChatRequest) -> AsyncIterator[Delta | Usage]: ...

    async def complete(self, request: CompletionRequest) -> Completion: ...

    def complete_stream(self, request: CompletionRequest) -> AsyncIterator[Delta | Usage]: ...

    async def close(self) -> None: ...


class EmbeddingModel(Protocol):
    async def prompt_tokens(self, request: EmbeddingRequest) -> int: ...

    async def embed(self, request: EmbeddingRequest) -> Embeddings: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A deployable model: what it is, and how to start it."""

    id: str
    kind: Literal["chat", "embeddings"]
    backend: str  # "local" or the name of a configured upstream
    description: str = ""
    context_tokens: int | None = None
    dimensions: int | None = None
    factory: Callable[[Settings], ChatModel | EmbeddingModel] | None = field(
        default=None, compare=False, repr=False
    )
