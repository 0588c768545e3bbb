"""Responses API objects built from a model's events: the ``response`` object, its output items,
and the streamed events with their ``sequence_number``.

Content-filter results are in Azure's Responses shape, which differs from chat's: one list,
``content_filters``, with an entry per screened source (``prompt``, ``completion``), each saying
whether it was ``blocked``. It is there only when the deployment's policy ran a filter.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from stockade.backends.base import Completion, Delta, Usage
from stockade.responses.conversation import CUSTOM_INPUT, Called, Functions
from stockade.responses.request import (
    CustomToolCall,
    CustomToolCallOutput,
    FunctionCall,
    FunctionCallOutput,
    Message,
    ResponseRequest,
    dumped,
)

FilterResults = dict[str, Any]
FILTERED = "content_filter"  # the finish reason of a completion the filters blocked
_ITEM_PREFIXES = {FunctionCall: "fc", FunctionCallOutput: "fco", CustomToolCall: "ctc", CustomToolCallOutput: "ctco"}
Event = dict[str, Any]


def response_id() -> str:
    # Stored responses are fetched by id: unguessable, as a capability would be.
    return f"resp_{secrets.token_hex(24)}"


def item_id(prefix: str) -> str:
    return f"{prefix}_{random.getrandbits(192):048x}"


def input_items(request: ResponseRequest) -> list[dict[str, Any]]:
    """The request's input items as stored and listed: as sent, each with an id (the caller's,
    or one given here)."""
    items = []
    for item in request.items():
        dumped_item = {"type": item.type, **dumped(item)}
        dumped_item.setdefault("id", item_id(_ITEM_PREFIXES.get(type(item), "msg")))
        if isinstance(item, Message) and isinstance(item.content, str):  # listed as parts, as OpenAI's
            part = "output_text" if item.role == "assistant" else "input_text"
            dumped_item["content"] = [{"type": part, "text": item.content}]
        items.append(dumped_item)
    return items


def usage(value: Usage) -> dict[str, Any]:
    return {
        "input_tokens": value.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": value.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": value.prompt_tokens + value.completion_tokens,
    }


def _incomplete(finish_reason: str | None) -> dict[str, str] | None:
    if finish_reason == "length":
        return {"reason": "max_output_tokens"}
    if finish_reason == FILTERED:
        return {"reason": "content_filter"}
    return None


def content_filters(
    prompt_results: list[FilterResults] | None,
    completion_results: FilterResults | None,
    completion_blocked: bool,
    offsets: dict[str, int] | None = None,
) -> list[dict[str, Any]] | None:
    """Azure's ``content_filters``: None when no filter ran."""
    if prompt_results is None and completion_results is None:
        return None
    entries = [
        {"blocked": False, "source_type": "prompt", "content_filter_results": entry["content_filter_results"]}
        for entry in prompt_results or ()
    ]
    if completion_results is not None:
        completion: dict[str, Any] = {
            "blocked": completion_blocked, "source_type": "completion",
            "content_filter_results": completion_results,
        }
        if offsets is not None:
            completion["content_filter_offsets"] = offsets
        entries.append(completion)
    return entries


def message_item(text: str, status: str = "completed", id: str | None = None) -> dict[str, Any]:
    return {
        "id": id or item_id("msg"),
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [] if status == "in_progress" else [_output_text(text)],
    }


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def custom_input(arguments: str) -> str:
    """A custom tool's input from the arguments the model wrote for the function standing in
    for it; what is not that function's JSON is the input as written."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return arguments
    if isinstance(value, dict) and isinstance(value.get(CUSTOM_INPUT), str):
        return value[CUSTOM_INPUT]
    return arguments


def call_item(call_id: str, called: Called, arguments: str, status: str = "completed") -> dict[str, Any]:
    """A function_call item, or a custom_tool_call for a custom tool (its input as text)."""
    item: dict[str, Any] = {
        "id": item_id("ctc" if called.custom else "fc"),
        "type": "custom_tool_call" if called.custom else "function_call",
        "status": status,
        "call_id": call_id,
        "name": called.name,
    }
    if called.custom:
        item["input"] = custom_input(arguments) if arguments else ""
    else:
        item["arguments"] = arguments
    if called.namespace is not None:
        item["namespace"] = called.namespace
    return item


@dataclass(slots=True)
class Shell:
    """What every version of one response shares: its id, its request's settings echoed back."""

    request: ResponseRequest
    model: str
    stored: bool
    id: str = field(default_factory=response_id)
    created_at: int = field(default_factory=lambda: int(time.time()))

    def body(
        self,
        status: str,
        output: list[dict[str, Any]],
        usage_counts: Usage | None = None,
        *,
        incomplete: dict[str, str] | None = None,
        error: dict[str, Any] | None = None,
        filters: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        request = self.request
        text: dict[str, Any] = {"format": dumped(request.format) if request.format else {"type": "text"}}
        if request.text is not None and request.text.verbosity is not None:
            text["verbosity"] = request.text.verbosity
        reasoning = request.reasoning
        body: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "completed_at": int(time.time()) if status == "completed" else None,
            "background": False,
            "error": error,
            "incomplete_details": incomplete,
            "instructions": request.instructions,
            "max_output_tokens": request.max_output_tokens,
            "metadata": request.metadata or {},
            "model": self.model,
            "output": output,
            "parallel_tool_calls": request.parallel_tool_calls is not False,
            "previous_response_id": request.previous_response_id,
            "reasoning": {"effort": None if reasoning is None else reasoning.effort, "summary": None},
            "service_tier": "default",
            "store": self.stored,
            "temperature": 1.0 if request.temperature is None else request.temperature,
            "text": text,
            "tool_choice": _echoed_choice(request),
            "tools": [dumped(tool) for tool in request.tools or ()],
            "top_p": 1.0 if request.top_p is None else request.top_p,
            "truncation": request.truncation or "disabled",
            "usage": None if usage_counts is None else usage(usage_counts),
            "user": request.user,
        }
        if filters is not None:
            body["content_filters"] = filters
        return body


def _echoed_choice(request: ResponseRequest) -> Any:
    choice = request.tool_choice
    if choice is None:
        return "auto"
    return choice if isinstance(choice, str) else dumped(choice)


def whole(
    shell: Shell,
    completion: Completion,
    functions: Functions,
    prompt_results: list[FilterResults] | None,
    choice_results: dict[int, FilterResults] | None,
) -> dict[str, Any]:
    """The response object of a completed (or incomplete) run."""
    choice = completion.choices[0] if completion.choices else None
    finish = None if choice is None else choice.finish_reason
    incomplete = _incomplete(finish)
    output: list[dict[str, Any]] = []
    if choice is not None and choice.text:
        output.append(message_item(choice.text, "incomplete" if incomplete else "completed"))
    for call in (choice.tool_calls or ()) if choice is not None else ():
        function = call.get("function") or {}
        output.append(call_item(
            call.get("id") or item_id("call"), functions.called(function.get("name", "")), function.get("arguments") or "",
        ))
    filters = content_filters(
        prompt_results, None if choice_results is None else choice_results.get(0, {}), finish == FILTERED,
    )
    return shell.body(
        "incomplete" if incomplete else "completed", output, completion.usage, incomplete=incomplete, filters=filters,
    )


@dataclass(slots=True)
class _OpenCall:
    output_index: int
    item: dict[str, Any]
    custom: bool
    arguments: str = ""  # as the model writes them: a custom tool's input is sent whole at the end


class StreamWriter:
    """The events of one streamed response, from the model's (screened) events."""

    def __init__(self, shell: Shell, functions: Functions, prompt_results: list[FilterResults] | None) -> None:
        self.shell = shell
        self.functions = functions
        self.prompt_results = prompt_results
        self.sequence = 0
        self.output: list[dict[str, Any]] = []
        self.usage = Usage(0, 0)
        self.finish: str | None = None
        self.completion_results: FilterResults | None = None
        self.offsets: dict[str, int] | None = None
        self._message: dict[str, Any] | None = None
        self._text: list[str] = []
        self._calls: dict[int, _OpenCall] = {}
        self.final: dict[str, Any] | None = None  # the last response object, once the stream ends

    def _event(self, kind: str, **fields: Any) -> Event:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return event

    def _filters(self) -> list[dict[str, Any]] | None:
        return content_filters(self.prompt_results, self.completion_results, self.finish == FILTERED, self.offsets)

    def opening(self) -> list[Event]:
        response = self.shell.body("in_progress", [], filters=content_filters(self.prompt_results, None, False))
        return [self._event("response.created", response=response),
                self._event("response.in_progress", response=response)]

    def used(self, usage_counts: Usage) -> None:
        if usage_counts.final:
            self.usage = usage_counts

    def screened(
        self, results: FilterResults, offsets: dict[str, int] | None = None, finish_reason: str | None = None,
    ) -> None:
        """The completion's latest filter results (with their offsets in asynchronous mode, and
        content_filter if the check blocked)."""
        self.completion_results = results
        if offsets is not None:
            self.offsets = offsets
        if finish_reason:
            self.finish = finish_reason

    def delta(self, item: Delta) -> list[Event]:
        events: list[Event] = []
        if item.text:
            events += self._text_delta(item.text)
        for fragment in item.tool_calls or ():
            events += self._call_delta(fragment)
        if item.finish_reason:
            self.finish = item.finish_reason
        return events

    def _text_delta(self, text: str) -> list[Event]:
        events = []
        if self._message is None:
            self._message = message_item("", "in_progress")
            self.output.append(self._message)
            events += [
                self._event("response.output_item.added", output_index=len(self.output) - 1, item=self._message),
                self._event("response.content_part.added", item_id=self._message["id"],
                            output_index=len(self.output) - 1, content_index=0, part=_output_text("")),
            ]
        self._text.append(text)
        events.append(self._event("response.output_text.delta", item_id=self._message["id"],
                                  output_index=self.output.index(self._message), content_index=0,
                                  delta=text, logprobs=[]))
        return events

    def _call_delta(self, fragment: dict[str, Any]) -> list[Event]:
        events = []
        index = fragment.get("index", len(self._calls))
        function = fragment.get("function") or {}
        call = self._calls.get(index)
        if call is None:
            events += self._close_message()
            called = self.functions.called(function.get("name") or "")
            item = call_item(fragment.get("id") or item_id("call"), called, "", status="in_progress")
            self.output.append(item)
            call = self._calls[index] = _OpenCall(len(self.output) - 1, item, called.custom)
            events.append(self._event("response.output_item.added", output_index=call.output_index, item=dict(item)))
        if arguments := function.get("arguments"):
            call.arguments += arguments
            if not call.custom:
                call.item["arguments"] = call.arguments
                events.append(self._event("response.function_call_arguments.delta", item_id=call.item["id"],
                                          output_index=call.output_index, delta=arguments))
        return events

    def _close_message(self) -> list[Event]:
        message = self._message
        if message is None:
            return []
        self._message = None
        index = self.output.index(message)
        text = "".join(self._text)
        part = _output_text(text)
        status = "incomplete" if _incomplete(self.finish) else "completed"
        message.update(status=status, content=[part])
        return [
            self._event("response.output_text.done", item_id=message["id"], output_index=index,
                        content_index=0, text=text, logprobs=[]),
            self._event("response.content_part.done", item_id=message["id"], output_index=index,
                        content_index=0, part=part),
            self._event("response.output_item.done", output_index=index, item=message),
        ]

    def closing(self) -> list[Event]:
        """The items' done events and the terminal one: completed, or incomplete."""
        events = self._close_message()
        for call in self._calls.values():
            call.item["status"] = "completed"
            events += self._call_done(call)
        incomplete = _incomplete(self.finish)
        status = "incomplete" if incomplete else "completed"
        self.final = self.shell.body(status, self.output, self.usage, incomplete=incomplete, filters=self._filters())
        events.append(self._event(f"response.{status}", response=self.final))
        return events

    def _call_done(self, call: _OpenCall) -> list[Event]:
        where = {"item_id": call.item["id"], "output_index": call.output_index}
        if call.custom:
            text = call.item["input"] = custom_input(call.arguments)
            done = [self._event("response.custom_tool_call_input.delta", **where, delta=text),
                    self._event("response.custom_tool_call_input.done", **where, input=text)]
        else:
            done = [self._event("response.function_call_arguments.done", **where, name=call.item["name"],
                                arguments=call.arguments)]
        return [*done, self._event("response.output_item.done", output_index=call.output_index, item=call.item)]

    def failed(
        self, code: str, message: str, param: str | None = None, event_code: str | None = None,
    ) -> list[Event]:
        """A stream that broke off: ``response.failed`` with the error, then an ``error`` event
        (its code ``event_code`` if given), as Azure ends a stream it cannot finish."""
        error = {"code": code, "message": message}
        self.final = self.shell.body("failed", self.output, self.usage, error=error, filters=self._filters())
        return [self._event("response.failed", response=self.final),
                self._event("error", code=event_code or code, message=message, param=param)]
