"""A Responses request as the chat request every model here runs: its chain's items and its
own as chat messages, its tools as chat tools, ``text.format`` as ``response_format``.

Local models and upstreams both take chat, so the Responses API runs on the same model
primitive, limits, filters and metering as chat completions. Names the chat side has no room
for are mapped both ways: a function in a namespace is offered to the model as
``namespace__name`` and its calls come back as ``{"namespace", "name"}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from stockade.errors import InvalidRequest
from stockade.requests import ChatRequest, invalid_request
from stockade.responses.request import CustomTool, FunctionTool, ResponseRequest, callable_tools

NAMESPACE_JOIN = "__"
CHAT_NAME_MAX = 64
# A chat request's parameters as the Responses API names them, for errors raised on the chat side.
PARAMS = {
    "messages": "input",
    "max_tokens": "max_output_tokens",
    "max_completion_tokens": "max_output_tokens",
    "response_format": "text.format",
}


def responses_param(param: str | None) -> str | None:
    """What a chat-side parameter is called in the Responses API."""
    if param is None:
        return None
    head, dot, rest = param.partition(".")
    bracket = head.find("[")
    base, index = (head, "") if bracket < 0 else (head[:bracket], head[bracket:])
    renamed = PARAMS.get(base)
    return param if renamed is None else f"{renamed}{index}{dot}{rest}"


# A custom (freeform) tool is offered to the model as a function of one string, its input.
CUSTOM_INPUT = "input"
CUSTOM_PARAMETERS = {
    "type": "object", "properties": {CUSTOM_INPUT: {"type": "string"}}, "required": [CUSTOM_INPUT],
}


@dataclass(frozen=True, slots=True)
class Called:
    """A tool the model called, as the Responses API names it."""

    namespace: str | None
    name: str
    custom: bool  # a custom tool, whose input is text rather than JSON arguments


@dataclass(slots=True)
class Functions:
    """The request's tools under the names the model is offered."""

    by_chat_name: dict[str, Called] = field(default_factory=dict)

    def chat_name(self, namespace: str | None, name: str) -> str:
        return name if namespace is None else f"{namespace}{NAMESPACE_JOIN}{name}"

    def called(self, chat_name: str) -> Called:
        return self.by_chat_name.get(chat_name, Called(None, chat_name, False))


def _tools(request: ResponseRequest, functions: Functions) -> list[dict[str, Any]]:
    tools = []
    for namespace, tool in callable_tools(request):
        chat_name = functions.chat_name(namespace, tool.name)
        if len(chat_name) > CHAT_NAME_MAX:
            raise InvalidRequest(
                f"Function {tool.name!r} in namespace {namespace!r} makes a name of "
                f"{len(chat_name)} characters ({chat_name!r}), more than the models here take "
                f"({CHAT_NAME_MAX}). Shorten the namespace or the function's name.",
                code="invalid_value", param="tools",
            )
        functions.by_chat_name[chat_name] = Called(namespace, tool.name, isinstance(tool, CustomTool))
        tools.append({"type": "function", "function": _function(tool, chat_name)})
    return tools


def _function(tool: FunctionTool | CustomTool, chat_name: str) -> dict[str, Any]:
    function: dict[str, Any] = {"name": chat_name}
    if isinstance(tool, CustomTool):
        # The grammar is told to the model, not enforced: the client checks the input it gets,
        # as it checks a function's arguments (docs/responses.md, "Custom tools").
        described = tool.description or ""
        if tool.format is not None and tool.format.type == "grammar":
            described += f"\n\nThe input must follow this {tool.format.syntax} grammar:\n{tool.format.definition}"
        function["description"] = described.strip()
        function["parameters"] = CUSTOM_PARAMETERS
        return function
    if tool.description is not None:
        function["description"] = tool.description
    if tool.parameters is not None:
        function["parameters"] = tool.parameters
    if tool.strict is not None:
        function["strict"] = tool.strict
    return function


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(
        str(part.get("text") if part.get("type") != "refusal" else part.get("refusal") or "")
        for part in content or ()
    )


def messages(
    instructions: str | None, items: Iterable[dict[str, Any]], functions: Functions
) -> list[dict[str, Any]]:
    """Chat messages from Responses items (as stored: plain JSON); consecutive function calls
    are one assistant message, as chat has them."""
    result: list[dict[str, Any]] = []
    if instructions:
        result.append({"role": "system", "content": instructions})
    for item in items:
        kind = item.get("type", "message")
        if kind == "message":
            result.append({"role": item["role"], "content": _text(item["content"])})
        elif kind in ("function_call", "custom_tool_call"):
            arguments = item["arguments"] if kind == "function_call" else json.dumps({CUSTOM_INPUT: item["input"]})
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": functions.chat_name(item.get("namespace"), item["name"]), "arguments": arguments},
            }
            previous = result[-1] if result else None
            if previous is not None and previous["role"] == "assistant" and "tool_calls" in previous:
                previous["tool_calls"].append(call)
            else:
                result.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            result.append({"role": "tool", "tool_call_id": item["call_id"], "content": _text(item["output"])})
    return result


def _response_format(request: ResponseRequest) -> dict[str, Any] | None:
    text_format = request.format
    if text_format is None or text_format.type == "text":
        return None
    if text_format.type == "json_object":
        return {"type": "json_object"}
    schema: dict[str, Any] = {"name": text_format.name, "schema": text_format.schema_}
    if text_format.description is not None:
        schema["description"] = text_format.description
    if text_format.strict is not None:
        schema["strict"] = text_format.strict
    return {"type": "json_schema", "json_schema": schema}


def _tool_choice(request: ResponseRequest) -> Any:
    choice = request.tool_choice
    if choice is None or isinstance(choice, str):
        return choice
    return {"type": "function", "function": {"name": choice.name}}


def _model_options(request: ResponseRequest, local: bool) -> dict[str, Any]:
    """Reasoning effort and verbosity: forwarded to an upstream (in chat's spelling), refused for
    a local model, which has neither."""
    options: dict[str, Any] = {}
    effort = None if request.reasoning is None else request.reasoning.effort
    verbosity = None if request.text is None else request.text.verbosity
    if effort not in (None, "none"):
        if local:
            raise InvalidRequest(
                "'reasoning.effort' is not supported: this deployment's model is a local one "
                "without reasoning. Leave reasoning.effort out (or send \"none\").",
                code="unsupported_parameter", param="reasoning.effort",
            )
        options["reasoning_effort"] = effort
    if verbosity is not None:
        if local:
            raise InvalidRequest(
                "'text.verbosity' is not supported: this deployment's model is a local one, "
                "which has no verbosity setting. Leave text.verbosity out.",
                code="unsupported_parameter", param="text.verbosity",
            )
        options["verbosity"] = verbosity
    return options


def chat_request(
    request: ResponseRequest, history: list[dict[str, Any]], items: list[dict[str, Any]], *, local: bool,
) -> tuple[ChatRequest, Functions]:
    """The chat request to run: the chain's ``history``, then this request's ``items``."""
    functions = Functions()
    body: dict[str, Any] = {
        "messages": messages(request.instructions, [*history, *items], functions),
        "stream": request.stream,
        "max_tokens": request.max_output_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "user": request.user,
        "response_format": _response_format(request),
        **_model_options(request, local),
    }
    if request.tools:
        body["tools"] = _tools(request, functions)
        body["tool_choice"] = _tool_choice(request)
        body["parallel_tool_calls"] = request.parallel_tool_calls
    try:
        chat = ChatRequest.model_validate({k: v for k, v in body.items() if v is not None})
    except ValidationError as exc:
        error = invalid_request(exc)
        raise InvalidRequest(error.message.replace(f"'{error.param}'", f"'{responses_param(error.param)}'"),
                             code=error.code, param=responses_param(error.param)) from None
    return chat, functions
