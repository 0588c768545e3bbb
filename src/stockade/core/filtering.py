"""Content filtering on the inference path: the prompt screened before the model runs, the
completion after it, and a streamed completion in windows so that blocked text is never sent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from stockade.backends.base import Completion, Delta, Events, Usage
from stockade.errors import ContentFiltered, InvalidRequest
from stockade.requests import ChatRequest, CompletionRequest
from stockade.safety.policy import Direction
from stockade.safety.screen import Decision, Screen, Verdict
from stockade.telemetry import Call, metrics

FILTERED = "content_filter"
# A streamed completion is checked once this much text waits beyond the held-back tail: each
# check costs a scan, and a classifier call when one is configured.
WINDOW_CHARS = 32


def _prompts(request: ChatRequest | CompletionRequest) -> list[list[str]]:
    """The texts of each prompt: a chat's messages are one prompt, a completion's list many."""
    if isinstance(request, ChatRequest):
        return [[message.text() for message in request.messages]]
    prompt = request.prompt
    if isinstance(prompt, str):
        return [[prompt]]
    texts = [item for item in prompt if isinstance(item, str)]
    if len(texts) == len(prompt):
        return [[text] for text in texts]
    raise InvalidRequest(
        "This deployment's content filter policy screens prompt text, and token-id prompts have "
        "none to screen. Send the prompt as text.",
        param="prompt",
    )


def record(call: Call, policy: str, decisions: Sequence[Decision]) -> None:
    """Filter decisions into the call's usage record and the metrics: metadata, never text."""
    for decision in decisions:
        call.filter_decisions.append(f"{policy}/{decision.direction}/{decision.category}/{decision.action}")
        metrics.content_filter_decision(
            call.deployment or "", policy, decision.direction, decision.category, decision.action
        ).inc()


@dataclass(slots=True)
class Filtering:
    """One call's screening: the deployment's screen, and what it decided (as metadata)."""

    screen: Screen
    call: Call
    decisions: list[Decision] = field(default_factory=list)

    async def check(
        self, texts: list[str], direction: Direction, *, final: bool = True, roles: list[str] | None = None,
    ) -> Verdict:
        verdict = await self.screen.check(texts, direction, final=final, roles=roles)
        record(self.call, self.screen.policy.name, verdict.decisions)
        return verdict

    async def prompt(self, request: ChatRequest | CompletionRequest) -> list[dict[str, Any]]:
        """``prompt_filter_results``; raises ``ContentFiltered`` if a prompt is blocked."""
        results = []
        # The prompt shields read messages by role (a tool's result is a document, not a prompt).
        roles: list[str] | None = [message.role for message in request.messages] if isinstance(request, ChatRequest) else None
        for index, texts in enumerate(_prompts(request)):
            verdict = await self.check(texts, Direction.PROMPT, roles=roles)
            if verdict.filtered:
                raise ContentFiltered.by_policy(verdict.results, self.screen.policy.name, self.call.deployment or "")
            results.append({"prompt_index": index, "content_filter_results": verdict.results})
        return results

    async def completion(self, completion: Completion) -> dict[int, dict[str, Any]]:
        """Each choice's ``content_filter_results``; a filtered choice loses its text and ends
        with finish_reason content_filter."""
        results = {}
        for choice in completion.choices:
            verdict = await self.check([choice.text or ""], Direction.COMPLETION)
            if verdict.filtered:
                choice.text, choice.finish_reason, choice.logprobs = None, FILTERED, None
            results[choice.index] = verdict.results
        return results

    def stream(self, events: Events) -> AsyncIterator[Delta | Usage | Screened]:
        return _StreamGuard(self).run(events)


@dataclass(frozen=True, slots=True)
class Screened:
    """A delta released by the stream guard, with the results of the window it belongs to."""

    delta: Delta
    results: dict[str, Any]


@dataclass(slots=True)
class _Choice:
    sent: str = ""  # the last ``tail`` characters sent: context for matches across the boundary
    pending: str = ""
    stopped: bool = False


class _StreamGuard:
    """Holds each choice's text back until it has been screened. The last ``tail`` characters
    (the longest exact term, or a bound for regular expressions) stay held until more text or the
    end comes, so a term split across chunks is caught before any of it is sent. Per-token
    logprobs are not passed on: they would belong to text released later, in other pieces."""

    def __init__(self, filtering: Filtering) -> None:
        self.filtering = filtering
        self.tail = filtering.screen.tail
        self.choices: dict[int, _Choice] = {}

    async def run(self, events: Events) -> AsyncIterator[Delta | Usage | Screened]:
        try:
            async for item in events:
                if isinstance(item, Usage):
                    yield item
                    continue
                state = self.choices.setdefault(item.index, _Choice())
                if state.stopped:
                    continue
                if item.tool_calls:
                    yield Delta(item.index, tool_calls=item.tool_calls)
                state.pending += item.text or ""
                if item.finish_reason or len(state.pending) >= self.tail + WINDOW_CHARS:
                    released = await self._release(item.index, state, item.finish_reason)
                    if released is not None:
                        yield released
        finally:
            await events.aclose()  # type: ignore[attr-defined]

    async def _release(self, index: int, state: _Choice, finish: str | None) -> Screened | None:
        final = finish is not None
        verdict = await self.filtering.check([state.sent + state.pending], Direction.COMPLETION, final=final)
        if verdict.filtered:
            state.stopped = True
            return Screened(Delta(index, finish_reason=FILTERED), verdict.results)
        cut = len(state.pending) if final else len(state.pending) - self.tail
        text, state.pending = state.pending[:cut], state.pending[cut:]
        state.sent = (state.sent + text)[-self.tail:] if self.tail else ""
        if not text and not final:
            return None
        return Screened(Delta(index, text=text or None, finish_reason=finish), verdict.results)
