"""Request bodies are validated strictly, and a failure names the parameter the caller sent."""

from __future__ import annotations

import json

import pytest

from stockade.errors import InvalidRequest
from stockade.requests import ChatRequest, EmbeddingRequest, parse

HELLO = [{"role": "user", "content": "hi"}]


def failure(body: object, body_type: type = ChatRequest) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parse(body_type, json.dumps(body).encode())
    return caught.value


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": HELLO, "stream": "yes"}, "stream"),
        ({"messages": HELLO, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"messages": HELLO, "n": 0}, "n"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "user"}]}, "messages[0]"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0]"),
        (
            {"messages": HELLO, "response_format": {"type": "json_schema", "json_schema": {"name": "x", "strict": "yes"}}},
            "response_format.json_schema.strict",
        ),
        ({"messages": HELLO, "tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools[0].function.name"),
        ({"messages": HELLO, "stream_options": {"include_usage": 1}}, "stream_options.include_usage"),
        ({"messages": HELLO, "seed": 2**64}, "seed"),
        ({"messages": HELLO, "logit_bias": {"x": 1}}, "logit_bias"),
        ({"messages": HELLO, "tool_choice": {"type": "function", "function": "f"}}, "tool_choice.function"),
    ],
)
def test_invalid_field_is_named_in_param(body: dict, param: str) -> None:
    error = failure(body)
    assert error.status == 400 and error.param == param


def test_numbers_are_not_accepted_as_strings() -> None:
    assert failure({"messages": HELLO, "max_tokens": "10"}).param == "max_tokens"


def test_integers_are_accepted_where_numbers_are_expected() -> None:
    assert parse(ChatRequest, json.dumps({"messages": HELLO, "temperature": 1}).encode()).temperature == 1


def test_unknown_fields_and_null_model_are_accepted() -> None:
    request = parse(ChatRequest, json.dumps({"messages": HELLO, "model": None, "future": [1]}).encode())
    assert request.model is None


def test_missing_field_is_missing_required_parameter() -> None:
    error = failure({}, EmbeddingRequest)
    assert error.code == "missing_required_parameter" and error.param == "input"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a", ["a"]), (["a", "b"], ["a", "b"]), ([1, 2], [[1, 2]]), ([[1], [2, 3]], [[1], [2, 3]])],
)
def test_embedding_input_takes_all_four_forms(value: object, expected: list) -> None:
    assert parse(EmbeddingRequest, json.dumps({"input": value}).encode()).inputs() == expected
