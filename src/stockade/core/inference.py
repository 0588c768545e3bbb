"""Chat, text completion and embeddings on a deployment: pick the model, admit, run, meter."""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar, cast

from stockade.access import Principal
from stockade.backends.base import (
    ChatModel,
    Completion,
    Delta,
    EmbeddingModel,
    Events,
    Prepared,
    Usage,
    collect,
)
from stockade.backends.registry import ModelRegistry
from stockade.billing.budgets import Spending
from stockade.core import bodies
from stockade.core.filtering import Annotation, Filtering, Screened
from stockade.core.protection import Protection
from stockade.errors import InvalidRequest, TooManyRequests
from stockade.quotas import Bucket, Limit, Limiter, Remaining, Reservation, reserved_tokens
from stockade.requests import ChatRequest, CompletionRequest, EmbeddingRequest
from stockade.safety.screen import Screen
from stockade.store import Deployment
from stockade.telemetry import Call, metrics, tracing
from stockade.telemetry.tracing import Tracing

Chunks = AsyncIterator[dict[str, Any]]
T = TypeVar("T")


def buckets(deployment: Deployment, principal: Principal) -> tuple[Bucket, ...]:
    """The limits a call draws on: its deployment's, and its key's if the key has one."""
    # Keyed by what the buckets are made of: hashing the whole records on every call cost more.
    return _buckets(
        deployment.name, deployment.capacity, principal.id, principal.name, principal.limit
    )


@functools.lru_cache(maxsize=4096)
def _buckets(
    name: str, capacity: int, key_id: str, key_name: str, key_limit: Limit | None
) -> tuple[Bucket, ...]:
    drawn = [
        Bucket(
            f"d:{name}",
            Limit.for_capacity(capacity),
            f"deployment {name!r}",
            "To raise it, give the deployment more capacity "
            f"(`stockade deployments update {name} --capacity N`).",
        )
    ]
    if key_limit is not None:
        drawn.append(
            Bucket(
                f"k:{key_id}",
                key_limit,
                f"API key {key_name!r}",
                f"To raise it, change the key's limits (`stockade keys update {key_id}`).",
            )
        )
    return tuple(drawn)


@functools.lru_cache(maxsize=1024)
def backfill(bucket: Bucket, headroom: float) -> Bucket:
    """A deployment's bucket as batch lines draw on it: the same counters (the same scope), a
    limit less ``headroom``, which is left to interactive calls."""
    limit = bucket.limit
    share = 1 - headroom
    return replace(
        bucket,
        limit=Limit(
            None if limit.tokens_per_minute is None else max(1, int(limit.tokens_per_minute * share)),
            None if limit.requests_per_minute is None else max(1, int(limit.requests_per_minute * share)),
        ),
        label=f"{bucket.label} for batch jobs (its limit less batch.headroom)",
    )


def _never_fits(
    bucket: Bucket, cost: int, request: ChatRequest | CompletionRequest | EmbeddingRequest
) -> None:
    """A 400 for a call that reserves more than its bucket's whole minute: a 429 would ask the
    caller to wait for something that can never come."""
    per_minute = bucket.limit.tokens_per_minute
    if per_minute is None or cost <= per_minute:
        return
    embeddings = isinstance(request, EmbeddingRequest)
    reserved = "its input" if embeddings else "its prompt, and max_tokens for each choice"
    fix = "Send less input" if embeddings else "Lower max_tokens or shorten the prompt"
    raise InvalidRequest(
        f"This call reserves {cost} tokens ({reserved}), more than the whole limit of "
        f"{bucket.label} ({per_minute} tokens per minute), so it could never be admitted. "
        f"{fix}. {bucket.remedy}".rstrip(),
        code="tokens_exceed_rate_limit",
        param="input" if embeddings else "max_tokens",
    )


@dataclass(frozen=True, slots=True)
class Answer:
    """A call's result: the whole body, or its chunks when it streams, and what the rate limits
    still allow after it was admitted."""

    content: dict[str, Any] | Chunks
    remaining: Remaining


Screenable = AsyncIterator[Delta | Usage | Screened | Annotation]


@dataclass(frozen=True, slots=True)
class Run:
    """A completion on its way: the model's events (metered, PHI restored), the filters that
    screen them, and the prompt's filter results. Read once, as a stream or whole."""

    events: Events
    filtering: Filtering | None
    prompt_results: list[bodies.FilterResults] | None
    remaining: Remaining

    def screened(self) -> Screenable:
        """The events as the completion's filters release them, window by window."""
        return self.events if self.filtering is None else self.filtering.stream(self.events)

    async def whole(self) -> tuple[Completion, dict[int, bodies.FilterResults] | None]:
        """The whole completion, screened, and each choice's filter results."""
        completion = await collect(self.events)
        results = None if self.filtering is None else await self.filtering.completion(completion)
        return completion, results


class Inference:
    def __init__(
        self,
        registry: ModelRegistry,
        limiter: Limiter,
        default_max_tokens: int,
        batch_headroom: float = 0.0,
        spending: Spending | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        """Calls of batch lines (``Call.batch_id`` set) leave ``batch_headroom`` of their
        deployment's limits to interactive calls. ``spending`` holds calls' costs in budgets.
        With ``tracing``, admission and the model are spans of the call's trace."""
        self.tracing = tracing
        self.registry = registry
        self.limiter = limiter
        self.spending = spending
        self.default_max_tokens = default_max_tokens
        self.batch_headroom = batch_headroom
        # Told (deployment, wait in ms) when an interactive call is throttled: the batch runner
        # then holds that deployment's lines until the window ends.
        self.on_throttled: Callable[[str, int], None] | None = None

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

    async def _admit(
        self,
        prepared: Prepared,
        deployment: Deployment,
        request: ChatRequest | CompletionRequest | EmbeddingRequest,
        call: Call,
        principal: Principal,
    ) -> Reservation:
        cost = reserved_tokens(request, prepared.prompt_tokens, self.default_max_tokens)
        drawn = buckets(deployment, principal)
        for bucket in drawn:
            _never_fits(bucket, cost, request)
        if call.batch_id is not None:
            drawn = (backfill(drawn[0], self.batch_headroom), *drawn[1:])
        try:
            with tracing.admission(self.tracing, deployment.name, cost):
                reservation = await self.limiter.reserve(drawn, cost, call.operation)
        except TooManyRequests as refused:
            metrics.rate_limit_decision(deployment.name, "throttled").inc()
            if call.batch_id is None and self.on_throttled is not None:
                self.on_throttled(deployment.name, refused.retry_after_ms)
            raise
        metrics.rate_limit_decision(deployment.name, "admitted").inc()
        if self.spending is not None and (budgets := self.spending.applicable(deployment.name, principal)):
            try:  # after the limiter, as tokens: a throttled call holds no money
                reservation.budget = await self.spending.hold(
                    budgets, deployment, principal, prepared.prompt_tokens, cost - prepared.prompt_tokens,
                    call.batch_id is not None,
                )
            except BaseException:
                await self.limiter.settle(reservation, 0)
                raise
        return reservation

    async def _settle(self, reservation: Reservation, call: Call) -> None:
        """Correct the reservation to the tokens the call really used (0 if it failed early);
        settling again changes nothing."""
        await self.limiter.settle(reservation, call.prompt_tokens + call.completion_tokens)
        if reservation.budget is not None and self.spending is not None:
            await self.spending.settle(reservation.budget, call.prompt_tokens, call.completion_tokens)

    async def run(
        self,
        deployment: Deployment,
        request: ChatRequest | CompletionRequest,
        call: Call,
        principal: Principal,
        screen: Screen,
        operation: str | None = None,
    ) -> Run:
        """A chat or text completion admitted and started: the model's one stream of events,
        which every answer's shape (chat, text, Responses) is built from. ``screen`` is the
        deployment's content filter: the prompt is screened here, before the model runs; the
        completion as the caller reads the run. ``operation`` names the call in errors."""
        chat = isinstance(request, ChatRequest)
        kind = operation or ("chatCompletion" if chat else "completion")
        model = cast(ChatModel, await self._model(deployment, "chat", kind))
        prepared = await model.prepare(request)
        reservation = await self._admit(prepared, deployment, request, call, principal)
        # Screened after admission, so that rate limits protect the filters as well as the model.
        filtering = None if screen.idle else Filtering(screen, call)
        protection = None if screen.phi is None else Protection(screen.phi, call)
        try:
            prompt_results = None if filtering is None else await filtering.prompt(request)
            if protection is not None:
                request, prompt_results = await protection.prompt(request, prompt_results)
                if protection.substitutions is not None:  # the model is sent the replaced text
                    prepared = await model.prepare(request)
                    if filtering is not None:
                        filtering.restored(protection.substitutions.originals.values())
        except BaseException:
            await self._settle(reservation, call)  # the model never ran: nothing was used
            raise
        generated = tracing.model_stream(
            self.tracing, model.generate(prepared), "chat" if chat else "text_completion",
            deployment.model, request.completion_limit,
        )
        # The metered stream settles the reservation when it ends, however it ends.
        events = self._metered(generated, call, reservation)
        if protection is not None:  # the values back in the reply before the filters see it
            events = protection.stream(events)
        return Run(events, filtering, prompt_results, reservation.remaining)

    async def generate(
        self,
        deployment: Deployment,
        request: ChatRequest | CompletionRequest,
        call: Call,
        principal: Principal,
        screen: Screen,
    ) -> Answer:
        """A chat or text completion: the whole body, or its chunks when the request streams."""
        chat = isinstance(request, ChatRequest)
        run = await self.run(deployment, request, call, principal, screen)
        if request.stream:
            writer = bodies.ChunkWriter(deployment.model, chat=chat, include_usage=request.include_usage)
            # As Azure: the prompt's annotations come first, in an event of their own.
            opening = None if run.prompt_results is None else writer.prompt_filter_results(run.prompt_results)
            return Answer(await primed(_chunks(run.screened(), writer), opening), run.remaining)
        completion, choice_results = await run.whole()
        build = bodies.chat_completion if chat else bodies.text_completion
        return Answer(build(completion, deployment.model, run.prompt_results, choice_results), run.remaining)

    async def embed(
        self, deployment: Deployment, request: EmbeddingRequest, call: Call, principal: Principal,
        screen: Screen | None = None,
    ) -> Answer:
        """Embeddings of the input; ``screen``'s PHI protection, if it has one, replaces or
        blocks the identifiers in it before the model sees them."""
        model = cast(EmbeddingModel, await self._model(deployment, "embeddings", "embeddings"))
        prepared = await model.prepare(request)
        reservation = await self._admit(prepared, deployment, request, call, principal)
        try:
            if screen is not None and screen.phi is not None:
                protection = Protection(screen.phi, call)
                replaced = await protection.embeddings(request)
                if protection.substitutions is not None:
                    prepared = await model.prepare(replaced)
            with tracing.model_call(self.tracing, "embeddings", deployment.model) as span:
                result = await model.embed(prepared)
                span.used(result.prompt_tokens, 0)
            call.prompt_tokens = result.prompt_tokens
        finally:
            await self._settle(reservation, call)
        body = bodies.embeddings(result, deployment.model, request.encoding_format)
        return Answer(body, reservation.remaining)

    async def _metered(self, events: Events, call: Call, reservation: Reservation) -> Events:
        """The model's events, counted into the call record as they pass, and timed: from the
        call's arrival to the first output, then per output token to the end (a stream closed
        early has no per-token time)."""
        first: float | None = None
        ended: float | None = None
        try:
            async for item in events:
                if isinstance(item, Usage):
                    call.prompt_tokens = item.prompt_tokens
                    call.completion_tokens = item.completion_tokens
                elif item.text or item.tool_calls:
                    if first is None:
                        first = time.perf_counter()
                    call.completion_tokens += 1  # an estimate until the final count arrives
                yield item
            ended = time.perf_counter()
        finally:
            await events.aclose()  # type: ignore[attr-defined]
            await self._settle(reservation, call)
            if first is not None:
                tokens_after_first = call.completion_tokens - 1
                per_token = None if ended is None or tokens_after_first < 1 else (ended - first) / tokens_after_first
                metrics.generation_timed(call.deployment, call.model, first - call.started, per_token)


async def _chunks(events: Screenable, writer: bodies.ChunkWriter) -> Chunks:
    try:
        async for item in events:
            if isinstance(item, Usage):
                if item.final and (chunk := writer.usage(item)) is not None:
                    yield chunk
                continue
            if isinstance(item, Annotation):
                yield writer.annotation(item.index, item.results, item.offsets, item.finish_reason)
                continue
            delta, results = (item.delta, item.results) if isinstance(item, Screened) else (item, None)
            for chunk in writer.delta(delta, results):
                yield chunk
    finally:
        await events.aclose()  # type: ignore[attr-defined]


async def primed(chunks: AsyncIterator[T], opening: T | None = None) -> AsyncIterator[T]:
    """Run a stream up to its first item, so that errors surface before any byte is sent;
    ``opening``, if given, is sent ahead of it."""
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = None

    async def replay() -> AsyncIterator[T]:
        try:
            if opening is not None:
                yield opening
            if first is not None:
                yield first
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]

    return replay()
