"""The small interface every model backend implements, and the values it returns.

A backend is either a chat model (chat and legacy text completions) or an embedding model. Both
work in two steps: ``prepare`` turns a validated request into the model's own form once (for a
local chat model: the chat template rendered and tokenized, the stop strings, the context checked)
and says how many prompt tokens it holds, which admission needs before anything runs; then
``generate`` (or ``embed``) runs it. Generation is always a stream of ``Delta`` items ending with
one final ``Usage``; the core builds whole (non-streamed) responses from that same stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypedDict

if TYPE_CHECKING:
    import numpy as np

    from stockade.config import Settings
    from stockade.requests import ChatRequest, CompletionRequest, EmbeddingRequest


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request made ready for one model: what admission counts, and what the model runs."""

    prompt_tokens: int  # exact for local models, an estimate for upstreams
    job: Any  # the backend's own form of the request, opaque to the core


@dataclass(slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int = 0
    # A stream may report its prompt size early (final=False), so that a call the client abandons
    # midway is still metered; the final report closes the stream.
    final: bool = True
    model: str | None = None  # the serving model's own name, when an upstream reports one


@dataclass(slots=True)
class Delta:
    index: int
    text: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    finish_reason: str | None = None
    logprobs: dict[str, Any] | None = None  # passed through from upstreams that return them


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


@dataclass(slots=True)
class Embeddings:
    vectors: np.ndarray  # float32, one row per input
    prompt_tokens: int


Events = AsyncIterator[Delta | Usage]


@dataclass(frozen=True, slots=True)
class PoolSpec:
    """Worker processes that run one model: the runner class each loads, and how many."""

    name: str
    runner: str  # "module:Class"; its methods do the work in the worker process
    options: dict[str, Any]  # the runner's constructor arguments
    processes: int = 1
    queue_size: int = 32  # requests that may wait for a busy worker before callers get 429
    # How long a call waits while the pool has no running worker (one is loading or restarting)
    # before it gets 503 with a retry hint; busy workers are waited for in the queue.
    wait_seconds: float = 60.0


PoolStateName = Literal["ready", "starting", "failed"]


class PoolState(TypedDict):
    """What a pool reports for health checks: plain values, which cross the hub's socket.

    ``ready``: at least one worker runs; ``starting``: none yet, one is loading; ``failed``:
    none, and the last load of each failed (the pool keeps retrying, with backoff)."""

    state: PoolStateName
    workers: int  # worker processes running now
    processes: int  # worker processes the pool keeps
    busy: int  # workers running a request now
    waiting: int  # requests waiting for a free worker


class WorkerPool(Protocol):
    """Model worker processes, wherever they run: this process's own children, or those of the
    replica that several HTTP processes share."""

    async def start(self) -> None: ...

    async def call(self, method: str, payload: Any) -> Any:
        """One result of the runner's ``method``."""
        ...

    def stream(self, method: str, payload: Any) -> AsyncIterator[Any]:
        """The items a generator ``method`` of the runner yields; closing it early stops it."""
        ...

    async def state(self) -> PoolState:
        """Whether its workers run, for /healthz and /readyz."""
        ...

    async def close(self) -> None: ...


class ModelHost(Protocol):
    """What a model factory is given: the settings, and worker pools for its heavy work."""

    settings: Settings

    def worker_pool(self, spec: PoolSpec) -> WorkerPool: ...

    async def close(self) -> None: ...


class ChatModel(Protocol):
    async def start(self) -> None:
        """Load what the model needs; called once, before the first ``prepare``."""

    async def prepare(self, request: ChatRequest | CompletionRequest) -> Prepared:
        """Render and count the prompt once; raises ``InvalidRequest`` (or
        ``ContextLengthExceeded``) for what the model cannot run, before any quota is spent."""
        ...

    def generate(self, prepared: Prepared) -> Events:
        """The completion as it is produced: deltas, then one final ``Usage``."""
        ...

    async def close(self) -> None: ...


class EmbeddingModel(Protocol):
    async def start(self) -> None: ...

    async def prepare(self, request: EmbeddingRequest) -> Prepared: ...

    async def embed(self, prepared: Prepared) -> Embeddings: ...

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
    path: str | None = None  # the file of a model the user added (`stockade models add`)
    factory: Callable[[ModelHost], ChatModel | EmbeddingModel] | None = field(
        default=None, compare=False, repr=False
    )


async def collect(events: Events) -> Completion:
    """Gather a stream of events into a whole completion."""
    texts: dict[int, list[str]] = {}
    calls: dict[int, list[dict[str, Any]]] = {}
    finish: dict[int, str] = {}
    logprobs: dict[int, dict[str, Any]] = {}
    usage = Usage(0, 0)
    async for item in events:
        if isinstance(item, Usage):
            usage = item
            continue
        if item.text:
            texts.setdefault(item.index, []).append(item.text)
        if item.tool_calls:
            calls.setdefault(item.index, []).extend(item.tool_calls)
        if item.logprobs is not None:
            logprobs[item.index] = item.logprobs
        if item.finish_reason:
            finish[item.index] = item.finish_reason
    choices = []
    for index in sorted(finish):
        tool_calls = [{k: v for k, v in c.items() if k != "index"} for c in calls.get(index, [])]
        text = "".join(texts.get(index, []))
        choices.append(
            Choice(
                index,
                text=None if tool_calls and not text else text,
                finish_reason=finish[index],
                tool_calls=tool_calls or None,
                logprobs=logprobs.get(index),
            )
        )
    return Completion(choices=choices, usage=usage)
