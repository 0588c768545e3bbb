"""Content filtering on the inference path: the prompt screened before the model runs, the
completion after it, and a streamed completion in windows so that blocked text is never sent."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from stockade.backends.base import Completion, Delta, Events, Usage
from stockade.errors import ContentFiltered, InvalidRequest
from stockade.requests import ChatRequest, CompletionRequest
from stockade.safety.phi.pii import callers_values
from stockade.safety.policy import Direction, Streaming
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
    call.filter_decisions += [f"{policy}/{d.direction}/{d.category}/{d.action}" for d in decisions]
    count(call.deployment or "", policy, decisions)


def count(deployment: str, policy: str, decisions: Sequence[Decision]) -> None:
    """Filter decisions into the metrics alone, for a text screened outside a call."""
    for decision in decisions:
        metrics.content_filter_decision(deployment, policy, decision.direction, decision.category, decision.action).inc()


@dataclass(slots=True)
class Filtering:
    """One call's screening: the deployment's screen, and what it decided (as metadata)."""

    screen: Screen
    call: Call
    callers: re.Pattern[str] | None = None  # the caller's values PHI protection put back in the reply

    def restored(self, values: Iterable[str]) -> None:
        """PHI protection puts these values of the caller's back in the reply before it is
        screened: they are not the completion's PII."""
        self.callers = callers_values(values)

    async def check(
        self, texts: list[str], direction: Direction, *, final: bool = True, roles: list[str] | None = None,
        reread: int = 0, redact: bool = False,
    ) -> Verdict:
        verdict = await self.screen.check(
            texts, direction, final=final, roles=roles, reread=reread, callers=self.callers, redact=redact
        )
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
        """Each choice's ``content_filter_results``, its text and its tool calls' arguments
        screened together; a filtered choice loses both and ends with finish_reason content_filter."""
        results = {}
        for choice in completion.choices:
            texts = _completion_texts(choice.text or "", choice.tool_calls or ())
            verdict = await self.check(texts, Direction.COMPLETION, redact=bool(choice.text))
            if verdict.filtered:
                choice.text, choice.tool_calls, choice.finish_reason, choice.logprobs = None, None, FILTERED, None
            results[choice.index] = verdict.results
        return results

    def stream(self, events: Events) -> AsyncIterator[Delta | Usage | Screened | Annotation]:
        return _StreamGuard(self).run(events)


def _completion_texts(text: str, calls: Iterable[dict[str, Any]]) -> list[str]:
    """What a completion gives to screen: its text, and each tool call's arguments."""
    texts = [text for text in (text, *(_arguments(call) for call in calls)) if text]
    return texts or [""]


def _arguments(call: dict[str, Any]) -> str:
    """A tool call's arguments as text to screen: the keys, strings and numbers of its JSON, one
    a line, so that escapes (``\\u0041``) hide nothing; the raw text when it is not JSON."""
    raw = str((call.get("function") or {}).get("arguments") or "")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return raw
    leaves: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            leaves += item.keys()
            stack += reversed(item.values())
        elif isinstance(item, list):
            stack += reversed(item)
        elif isinstance(item, str | int | float) and not isinstance(item, bool):
            leaves.append(str(item))
    return "\n".join(leaves)


def _hold(calls: dict[int, dict[str, Any]], fragments: list[dict[str, Any]]) -> None:
    """Gathers streamed tool-call fragments into whole calls: an upstream streams a call's
    arguments in pieces (its first piece has the id and name), a local model each call whole."""
    for fragment in fragments:
        index = fragment.get("index", len(calls))
        call = calls.setdefault(
            index, {"index": index, "type": "function", "function": {"name": "", "arguments": ""}}
        )
        for key in ("id", "type"):
            if fragment.get(key):
                call[key] = fragment[key]
        function = fragment.get("function") or {}
        if function.get("name"):
            call["function"]["name"] = function["name"]
        call["function"]["arguments"] += function.get("arguments") or ""


@dataclass(frozen=True, slots=True)
class Screened:
    """A delta released by the stream guard, with the results of the window it belongs to."""

    delta: Delta
    results: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Annotation:
    """Asynchronous mode: the results of text already sent, in an event of its own.
    ``offsets`` are Azure's ``content_filter_offsets`` (characters from the completion's start):
    ``start_offset`` to ``end_offset`` the text the check read, ``check_offset`` how far the text is
    screened conclusively. ``finish_reason`` is content_filter when the check blocked: the
    choice ends there."""

    index: int
    results: dict[str, Any]
    offsets: dict[str, int]
    finish_reason: str | None = None


@dataclass(slots=True)
class _Choice:
    context: str = ""  # the last ``tail`` characters screened: for matches across the boundary
    pending: str = ""  # text received, not yet screened conclusively
    checked: int = 0  # characters of the completion screened conclusively
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)  # tool calls, held whole
    stopped: bool = False


class _StreamGuard:
    """Screens each choice's text in windows as it streams.

    Blocking mode holds the text back until screened. The last ``tail`` characters (the longest
    exact term, or a bound for regular expressions) stay held until more text or the end comes,
    so a term split across chunks is caught before any of it is sent. Per-token logprobs are not
    passed on: they would belong to text released later, in other pieces.

    Asynchronous mode sends the text as it comes and screens the same windows behind it, each
    check's results in an ``Annotation``. A delta is sent in parts when it would carry the text
    beyond the next window, so that a check runs before more than ``tail + WINDOW_CHARS``
    characters follow the last one screened: that bounds how far past a violation the text
    goes before the choice is ended.

    In both modes tool calls are held whole to the choice's end and screened with its last
    window: a client acts on a call only when it is complete, and a blocked one is never sent."""

    def __init__(self, filtering: Filtering) -> None:
        self.filtering = filtering
        self.tail = filtering.screen.tail
        self.asynchronous = filtering.screen.policy.streaming is Streaming.ASYNCHRONOUS
        self.choices: dict[int, _Choice] = {}

    async def run(self, events: Events) -> AsyncIterator[Delta | Usage | Screened | Annotation]:
        window = self.tail + WINDOW_CHARS
        try:
            async for item in events:
                if isinstance(item, Usage):
                    yield item
                    continue
                state = self.choices.setdefault(item.index, _Choice())
                if state.stopped:
                    continue
                if item.tool_calls:
                    _hold(state.calls, item.tool_calls)
                text = item.text or ""
                if not self.asynchronous:
                    state.pending += text
                    if item.finish_reason or len(state.pending) >= window:
                        for released in await self._screen(item.index, state, item.finish_reason):
                            yield released
                    continue
                while text and not state.stopped:
                    piece, text = text[: window - len(state.pending)], text[window - len(state.pending):]
                    yield Delta(item.index, text=piece)
                    state.pending += piece
                    if len(state.pending) >= window:
                        for released in await self._screen(item.index, state, None):
                            yield released
                if item.finish_reason and not state.stopped:
                    for released in await self._screen(item.index, state, item.finish_reason):
                        yield released
        finally:
            await events.aclose()  # type: ignore[attr-defined]

    async def _screen(
        self, index: int, state: _Choice, finish: str | None
    ) -> list[Delta | Screened | Annotation]:
        """Check the pending window (with the held tool calls at the choice's end); what to send."""
        final = finish is not None
        calls = list(state.calls.values()) if final else []
        texts = _completion_texts(state.context + state.pending, calls)
        verdict = await self.filtering.check(texts, Direction.COMPLETION, final=final, reread=len(state.context))
        read = {
            "start_offset": state.checked - len(state.context),
            "end_offset": state.checked + len(state.pending),
        }
        if verdict.filtered:
            state.stopped = True
            if self.asynchronous:
                return [Annotation(index, verdict.results, {"check_offset": state.checked, **read}, FILTERED)]
            return [Screened(Delta(index, finish_reason=FILTERED), verdict.results)]
        cut = len(state.pending) if final else len(state.pending) - self.tail
        text, state.pending = state.pending[:cut], state.pending[cut:]
        state.context = (state.context + text)[-self.tail:] if self.tail else ""
        state.checked += cut
        if self.asynchronous:
            annotation = Annotation(index, verdict.results, {"check_offset": state.checked, **read})
            if not final:
                return [annotation]
            return [annotation, Delta(index, tool_calls=calls or None, finish_reason=finish)]
        if not text and not final:
            return []
        released = Delta(index, text=text or None, tool_calls=calls or None, finish_reason=finish)
        return [Screened(released, verdict.results)]
