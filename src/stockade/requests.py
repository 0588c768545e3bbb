"""Validated request bodies for chat, completions and embeddings.

Types are strict (a string is not a number), unknown fields are accepted and ignored, and a body
that fails validation becomes a 400 naming the offending parameter.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from stockade.errors import InvalidRequest

# The OpenAI spec's integers are int64 (seed says so outright); orjson, which writes an upstream's
# body, cannot write integers beyond 64 bits, and the store's columns are 64-bit too.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
Count = Annotated[int, Field(ge=1, le=INT64_MAX)]
# Tokenizers' ids are 32-bit (llama.cpp's llama_token is an int32_t).
TOKEN_ID_MAX = 2**31 - 1
TokenIds = list[Annotated[int, Field(ge=0, le=TOKEN_ID_MAX)]]
Penalty = Annotated[float, Field(ge=-2.0, le=2.0)]


def _fits_64_bits(value: Any) -> Any:
    """Free-form JSON (unknown fields, tool arguments, schemas) is forwarded as it came; any
    integer in it must be one that can be written back out."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, bool):
            continue
        if isinstance(item, int) and not INT64_MIN <= item <= INT64_MAX:
            raise ValueError(
                f"the integer {item} is outside the 64-bit range ({INT64_MIN} to {INT64_MAX})"
            )
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return value


Json = Annotated[Any, AfterValidator(_fits_64_bits)]
JsonObject = dict[str, Json]


class BodyPart(BaseModel):
    """A part of a request body: strict types, unknown fields kept (and checked as free JSON)."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    @model_validator(mode="after")
    def _extra_fields_fit_64_bits(self) -> Any:
        if self.__pydantic_extra__:
            _fits_64_bits(self.__pydantic_extra__)
        return self


class _Body(BodyPart):
    # Routing key on /v1 routes; ignored on deployment routes, where LangChain sends null.
    model: str | None = None
    user: str | None = None


class _Message(BodyPart):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[JsonObject] | None = None
    name: str | None = None
    tool_calls: list[JsonObject] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _content_rules(self) -> _Message:
        if self.role in ("system", "developer", "user", "tool") and self.content is None:
            raise ValueError(f"a {self.role} message needs content")
        if self.role == "assistant" and self.content is None and not self.tool_calls:
            raise ValueError("an assistant message needs content or tool_calls")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs tool_call_id")
        return self

    def text(self) -> str:
        """The message's text, with text parts joined; images are not supported locally."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        parts = []
        for part in self.content:
            if part.get("type") not in ("text", "refusal"):
                raise InvalidRequest(
                    f"content parts of type {part.get('type')!r} are not supported by this model",
                    param="messages",
                )
            parts.append(str(part.get("text") or part.get("refusal") or ""))
        return "".join(parts)


class _Function(BodyPart):
    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    description: str | None = None
    parameters: JsonObject | None = None
    strict: bool | None = None


class _Tool(BodyPart):
    type: Literal["function"]
    function: _Function


class _JsonSchemaFormat(BodyPart):
    name: str
    description: str | None = None
    schema_: Annotated[JsonObject | None, Field(alias="schema")] = None
    strict: bool | None = None


class _ResponseFormat(BodyPart):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: _JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_present(self) -> _ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("json_schema is required when type is json_schema")
        return self


class _StreamOptions(BodyPart):
    include_usage: bool | None = None


def _token_id(key: str) -> str:
    if int(key) > TOKEN_ID_MAX:
        raise ValueError(f"token id {key} is beyond the largest token id, {TOKEN_ID_MAX}")
    return key


class _FunctionName(BodyPart):
    name: str


class _NamedToolChoice(BodyPart):
    type: Literal["function"]
    function: _FunctionName


class _Sampling(_Body):
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    n: Annotated[int, Field(ge=1, le=128)] | None = None
    stream: bool | None = None
    stream_options: _StreamOptions | None = None
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None
    max_tokens: Count | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    # Keys are token ids, written as JSON object keys are: decimal strings.
    logit_bias: (
        dict[
            Annotated[str, Field(pattern=r"^[0-9]{1,10}$"), AfterValidator(_token_id)],
            Annotated[int, Field(ge=-100, le=100)],
        ]
        | None
    ) = None
    seed: Int64 | None = None

    @property
    def choices(self) -> int:
        return self.n or 1

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def stop_sequences(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


class ChatRequest(_Sampling):
    messages: Annotated[list[_Message], Field(min_length=1)]
    max_completion_tokens: Count | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    response_format: _ResponseFormat | None = None
    tools: Annotated[list[_Tool], Field(max_length=128)] | None = None
    # Told apart by the JSON type, so that an object's error names its field (tool_choice.function)
    # rather than that it is not one of the strings.
    tool_choice: (
        Annotated[
            Annotated[Literal["none", "auto", "required"], Tag("_mode")]
            | Annotated[_NamedToolChoice, Tag("_named")],
            Discriminator(lambda value: "_named" if isinstance(value, dict | BaseModel) else "_mode"),
        ]
        | None
    ) = None
    parallel_tool_calls: bool | None = None

    @property
    def completion_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def named_function(self) -> str | None:
        """The function tool_choice names, if it names one."""
        if isinstance(self.tool_choice, _NamedToolChoice):
            return self.tool_choice.function.name
        return None

    @model_validator(mode="after")
    def _tool_choice_names_a_tool(self) -> ChatRequest:
        if (name := self.named_function) is not None:
            if not any(tool.function.name == name for tool in self.tools or ()):
                raise ValueError(f"tool_choice names function {name!r}, which is not in tools")
        elif self.tool_choice in ("auto", "required") and not self.tools:
            raise ValueError(f"tool_choice {self.tool_choice!r} needs tools")
        return self


class CompletionRequest(_Sampling):
    prompt: str | list[str] | TokenIds | list[TokenIds]
    echo: bool | None = None
    suffix: str | None = None
    best_of: Annotated[int, Field(ge=1, le=20)] | None = None
    logprobs: Annotated[int, Field(ge=0, le=5)] | None = None

    @property
    def completion_limit(self) -> int:
        return self.max_tokens or 16  # the API's documented default


class EmbeddingRequest(_Body):
    input: (
        Annotated[str, Field(min_length=1)]
        | Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1, max_length=2048)]
        | Annotated[TokenIds, Field(min_length=1)]
        | Annotated[list[Annotated[TokenIds, Field(min_length=1)]], Field(min_length=1, max_length=2048)]
    )
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: Count | None = None
    input_type: str | None = None

    def inputs(self) -> list[str] | list[list[int]]:
        """The inputs as a list of strings or a list of token-id lists."""
        if isinstance(self.input, str):
            return [self.input]
        if isinstance(self.input[0], int):
            return [self.input]  # type: ignore[list-item]
        return list(self.input)  # type: ignore[return-value]


def parse(body_type: type[BaseModel], raw: bytes) -> Any:
    """Validate a JSON body, turning the first problem into an Azure-style 400."""
    try:
        return body_type.model_validate_json(raw)
    except ValidationError as exc:
        raise invalid_request(exc) from None


def invalid_request(exc: ValidationError) -> InvalidRequest:
    errors = exc.errors(include_url=False)
    first = errors[0]
    if first["type"] == "json_invalid":
        return InvalidRequest(
            "We could not parse the JSON body of your request. The body must be a JSON object; "
            "check it for syntax errors.",
            code="invalid_json",
        )
    if first["type"] == "model_type" and not first["loc"]:
        return InvalidRequest("The request body must be a JSON object.", code="invalid_type")
    param = _param_name(first["loc"])
    if first["type"] == "missing":
        return InvalidRequest(
            f"Missing required parameter: '{param}'.", code="missing_required_parameter", param=param
        )
    return InvalidRequest(
        f"Invalid value for '{param}': {first['msg']}.", code="invalid_value", param=param
    )


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "dict", "list", "none"})


def _param_name(loc: tuple[int | str, ...]) -> str:
    """``messages[0].content`` from pydantic's location, leaving out the tags it adds for union
    members and validators (``list[str]``, ``function-after[...]``, ``_Message``): field names
    never contain brackets or hyphens, nor start with an underscore. A bad key of a map names the
    map: the key is the caller's data, not a parameter."""
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif part == "[key]":
            parts.pop()
        elif part in _TYPE_TAGS or "[" in part or "-" in part or part.startswith("_"):
            continue
        else:
            parts.append(f".{part}" if parts else part)
    return "".join(parts) or "body"
