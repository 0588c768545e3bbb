"""The Responses API's request body: validated as chat's is (strict types, unknown fields kept),
and refused with a 400 naming the parameter for what Stockade does not run.

What a local or chat-only model cannot do is refused, never dropped: built-in tools (web search,
file search, code interpreter, …), background responses, stored prompts, conversations, and
item types other than messages and function calls. ``docs/responses.md`` lists each.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Field, Tag, ValidationError, model_validator

from stockade.errors import InvalidRequest, shown
from stockade.requests import BodyPart, Count, JsonObject, invalid_request

FUNCTION_NAME = r"^[a-zA-Z0-9_-]{1,64}$"
# What ``include`` may ask for. Stockade makes no reasoning items, so encrypted reasoning is
# vacuous, not refused: Codex asks for it on every call.
INCLUDABLE = frozenset({"reasoning.encrypted_content"})
# Parameters of the API that need a service Stockade does not run: value -> why it is refused.
UNSUPPORTED = {
    "background": "background responses are not run here: send the request without it and wait "
                  "for the answer, or stream it",
    "conversation": "the Conversations API is not served here: chain responses with "
                    "previous_response_id, or send the whole conversation as input",
    "prompt": "stored prompt templates are not served here: send the prompt's text as "
              "instructions and input",
    "top_logprobs": "log probabilities are not returned by the Responses API here; chat "
                    "completions return them",
    "max_tool_calls": "built-in tool calls are not run here, so there is nothing to limit",
}
BUILT_IN_TOOLS = (
    "web_search", "web_search_preview", "file_search", "code_interpreter", "computer_use_preview",
    "computer", "image_generation", "mcp", "local_shell", "shell", "apply_patch", "tool_search",
)


class _Text(BodyPart):
    """A text content part: input_text in a user's message, output_text in an assistant's."""

    type: Literal["input_text", "output_text", "text", "refusal"]
    text: str | None = None
    refusal: str | None = None


def _part_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return "_text" if kind in ("input_text", "output_text", "text", "refusal") else "_other"


class _OtherPart(BodyPart):
    type: str


Part = Annotated[
    Annotated[_Text, Tag("_text")] | Annotated[_OtherPart, Tag("_other")], Discriminator(_part_tag)
]


def _text_or_list(value: Any) -> str:
    return "_str" if isinstance(value, str) else "_list"


def text_or(items: Any) -> Any:
    """A string, or a list of ``items``: told apart by the JSON type, so that a bad list's error
    names the item and field (``input[2].call_id``) rather than that it is not a string."""
    return Annotated[
        Annotated[str, Tag("_str")] | Annotated[list[items], Tag("_list")],  # type: ignore[valid-type]
        Discriminator(_text_or_list),
    ]


class Message(BodyPart):
    type: Literal["message"] = "message"
    id: str | None = None
    role: Literal["user", "system", "developer", "assistant"]
    content: text_or(Part)  # type: ignore[valid-type]
    status: str | None = None


class _Call(BodyPart):
    """A call the model made of one of the caller's tools (``namespace``: the tool's group)."""

    id: str | None = None
    call_id: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1)]
    namespace: str | None = None
    status: str | None = None


class FunctionCall(_Call):
    type: Literal["function_call"]
    arguments: str


class _CallOutput(BodyPart):
    """What a tool the caller ran gave back, for the call ``call_id``."""

    id: str | None = None
    call_id: Annotated[str, Field(min_length=1)]
    output: text_or(Part)  # type: ignore[valid-type]
    status: str | None = None


class FunctionCallOutput(_CallOutput):
    type: Literal["function_call_output"]


class CustomToolCall(_Call):
    """A call of a custom (freeform) tool: its input is text, not JSON arguments."""

    type: Literal["custom_tool_call"]
    input: str


class CustomToolCallOutput(_CallOutput):
    type: Literal["custom_tool_call_output"]


class _OtherItem(BodyPart):
    type: str


Item = Message | FunctionCall | FunctionCallOutput | CustomToolCall | CustomToolCallOutput
ITEM_TYPES = ("message", "function_call", "function_call_output", "custom_tool_call", "custom_tool_call_output")


def _item_tag(value: Any) -> str:
    kind = value.get("type", "message") if isinstance(value, dict) else getattr(value, "type", None)
    return f"_{kind}" if kind in ITEM_TYPES else "_other"


InputItem = Annotated[
    Annotated[Message, Tag("_message")]
    | Annotated[FunctionCall, Tag("_function_call")]
    | Annotated[FunctionCallOutput, Tag("_function_call_output")]
    | Annotated[CustomToolCall, Tag("_custom_tool_call")]
    | Annotated[CustomToolCallOutput, Tag("_custom_tool_call_output")]
    | Annotated[_OtherItem, Tag("_other")],
    Discriminator(_item_tag),
]


class FunctionTool(BodyPart):
    type: Literal["function"]
    name: Annotated[str, Field(pattern=FUNCTION_NAME)]
    description: str | None = None
    parameters: JsonObject | None = None
    strict: bool | None = None


class CustomFormat(BodyPart):
    type: Literal["text", "grammar"]
    syntax: Literal["lark", "regex"] | None = None
    definition: str | None = None


class CustomTool(BodyPart):
    """A freeform tool: the model writes its input as text (Codex's and Copilot's apply_patch)."""

    type: Literal["custom"]
    name: Annotated[str, Field(pattern=FUNCTION_NAME)]
    description: str | None = None
    format: CustomFormat | None = None


class NamespaceTool(BodyPart):
    """Function tools grouped under a name (Codex sends its sub-agent tools so)."""

    type: Literal["namespace"]
    name: Annotated[str, Field(pattern=FUNCTION_NAME)]
    description: str | None = None
    tools: Annotated[list[JsonObject], Field(min_length=1)]


class _OtherTool(BodyPart):
    type: str


def _tool_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return f"_{kind}" if kind in ("function", "custom", "namespace") else "_other"


Tool = Annotated[
    Annotated[FunctionTool, Tag("_function")]
    | Annotated[CustomTool, Tag("_custom")]
    | Annotated[NamespaceTool, Tag("_namespace")]
    | Annotated[_OtherTool, Tag("_other")],
    Discriminator(_tool_tag),
]


class _NamedFunction(BodyPart):
    type: str
    name: str | None = None


class TextFormat(BodyPart):
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    description: str | None = None
    schema_: Annotated[JsonObject | None, Field(alias="schema")] = None
    strict: bool | None = None

    @model_validator(mode="after")
    def _schema_named(self) -> TextFormat:
        if self.type == "json_schema" and (self.name is None or self.schema_ is None):
            raise ValueError("a json_schema format needs name and schema")
        return self


class TextOptions(BodyPart):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class Reasoning(BodyPart):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


class ResponseRequest(BodyPart):
    model: str | None = None
    input: text_or(InputItem) = Field(default_factory=list)  # type: ignore[valid-type]
    instructions: str | None = None
    previous_response_id: str | None = None
    max_output_tokens: Count | None = None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    tools: Annotated[list[Tool], Field(max_length=128)] | None = None
    tool_choice: Literal["none", "auto", "required"] | _NamedFunction | None = None
    parallel_tool_calls: bool | None = None
    text: TextOptions | None = None
    reasoning: Reasoning | None = None
    metadata: Annotated[dict[str, Annotated[str, Field(max_length=512)]], Field(max_length=16)] | None = None
    store: bool | None = None
    stream: bool | None = None
    truncation: Literal["auto", "disabled"] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    include: list[str] | None = None
    service_tier: Literal["auto", "default"] | None = None

    def items(self) -> list[Item]:
        """The input as items: a string is one user message."""
        if isinstance(self.input, str):
            return [Message(role="user", content=self.input)]
        return self.input  # type: ignore[return-value]  # _refuse_unsupported left no other

    @property
    def stores(self) -> bool:
        return self.store is not False  # Azure's default, as OpenAI's: stored

    @property
    def format(self) -> TextFormat | None:
        return None if self.text is None else self.text.format

    def check(self) -> None:
        """Refuse, naming the parameter, what Stockade cannot run (pydantic took the shapes)."""
        extra = self.__pydantic_extra__ or {}
        for name, why in UNSUPPORTED.items():
            if extra.get(name) not in (None, False):
                raise _unsupported(name, why)
        if not self.input and self.previous_response_id is None:
            raise InvalidRequest(
                "Missing required parameter: 'input'.", code="missing_required_parameter", param="input"
            )
        for number, item in enumerate(self.input if isinstance(self.input, list) else ()):
            _check_item(item, f"input[{number}]")
        for number, tool in enumerate(self.tools or ()):
            _check_tool(tool, f"tools[{number}]")
        if isinstance(self.tool_choice, _NamedFunction):
            self._check_named_choice()
        elif self.tool_choice in ("auto", "required") and not self.tools:
            raise InvalidRequest(
                f"Invalid value for 'tool_choice': {self.tool_choice!r} needs tools.",
                code="invalid_value", param="tool_choice",
            )
        for number, value in enumerate(self.include or ()):
            if value not in INCLUDABLE:
                raise _unsupported(
                    f"include[{number}]",
                    f"{shown(value)!r} is not something this server can include; only "
                    "reasoning.encrypted_content is accepted, and there is none to include",
                )

    def _check_named_choice(self) -> None:
        choice = self.tool_choice
        assert isinstance(choice, _NamedFunction)
        if choice.type not in ("function", "custom"):
            raise _unsupported("tool_choice.type", f"{shown(choice.type)!r} names a built-in tool, "
                               "and built-in tools are not run here")
        names = {tool.name for tool in self.tools or () if isinstance(tool, FunctionTool | CustomTool)}
        if choice.name not in names:
            raise InvalidRequest(
                f"Invalid value for 'tool_choice.name': function {shown(choice.name or '')!r} is "
                "not in tools.", code="invalid_value", param="tool_choice.name",
            )


def _unsupported(param: str, why: str) -> InvalidRequest:
    return InvalidRequest(f"'{param}' is not supported: {why}.", code="unsupported_parameter", param=param)


def _check_item(item: Any, where: str) -> None:
    if isinstance(item, _OtherItem):
        raise _unsupported(
            f"{where}.type",
            f"input items of type {shown(item.type)!r} are not taken here; send {', '.join(ITEM_TYPES)} items",
        )
    parts = item.content if isinstance(item, Message) else getattr(item, "output", None)
    if isinstance(parts, str):
        return
    for number, part in enumerate(parts if isinstance(parts, list) else ()):
        if isinstance(part, _OtherPart):
            field = "content" if isinstance(item, Message) else "output"
            raise _unsupported(
                f"{where}.{field}[{number}].type",
                f"content of type {shown(part.type)!r} is not supported by the models here; send "
                "text (input_text)",
            )


def _check_tool(tool: Any, where: str) -> None:
    if isinstance(tool, _OtherTool):
        kind = "built-in tool" if tool.type in BUILT_IN_TOOLS else "tool type"
        raise _unsupported(
            f"{where}.type",
            f"the {kind} {shown(tool.type)!r} is not run here: only function and custom tools (and "
            "namespaces of them) are; leave it out (Codex: web_search = \"disabled\")",
        )
    if isinstance(tool, NamespaceTool):
        for number, inner in enumerate(tool.tools):
            model = NAMESPACED.get(str(inner.get("type")))
            if model is None:
                raise _unsupported(
                    f"{where}.tools[{number}].type",
                    f"a namespace holds function and custom tools, not {shown(str(inner.get('type')))!r}",
                )
            try:
                model.model_validate(inner)
            except ValidationError as exc:
                raise _renamed(invalid_request(exc), f"{where}.tools[{number}]") from None


def _renamed(error: InvalidRequest, prefix: str) -> InvalidRequest:
    param = f"{prefix}.{error.param}" if error.param not in (None, "body") else prefix
    message = error.message.replace(f"'{error.param}'", f"'{param}'")
    return InvalidRequest(message, code=error.code, param=param)


def parse_request(raw: bytes) -> ResponseRequest:
    """A Responses body, validated and checked; the first problem becomes a 400 naming it."""
    try:
        request = ResponseRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise invalid_request(exc) from None
    request.check()
    return request


NAMESPACED: dict[str, type[FunctionTool] | type[CustomTool]] = {"function": FunctionTool, "custom": CustomTool}


def callable_tools(request: ResponseRequest) -> list[tuple[str | None, FunctionTool | CustomTool]]:
    """The request's function and custom tools, each with its namespace (None at the top level)."""
    found: list[tuple[str | None, FunctionTool | CustomTool]] = []
    for tool in request.tools or ():
        if isinstance(tool, FunctionTool | CustomTool):
            found.append((None, tool))
        elif isinstance(tool, NamespaceTool):
            found.extend((tool.name, NAMESPACED[inner["type"]].model_validate(inner)) for inner in tool.tools)
    return found


def dumped(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)
