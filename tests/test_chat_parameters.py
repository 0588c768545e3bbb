"""Chat completions on the local llama.cpp model honour the request's parameters."""

from __future__ import annotations

import json

import pytest
from openai import AzureOpenAI

HELLO = [{"role": "user", "content": "Tell me about the sea."}]


def test_max_tokens_caps_the_completion_and_reports_length(azure: AzureOpenAI) -> None:
    response = azure.chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=7, temperature=1.5)
    assert response.usage.completion_tokens == 7
    assert response.choices[0].finish_reason == "length"


def test_max_completion_tokens_works_like_max_tokens(azure: AzureOpenAI) -> None:
    response = azure.chat.completions.create(model="gpt-4o", messages=HELLO, max_completion_tokens=4)
    assert response.usage.completion_tokens == 4


def test_same_seed_and_temperature_give_the_same_text(azure: AzureOpenAI) -> None:
    first, second = (
        azure.chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=20, seed=42, temperature=0.9)
        for _ in range(2)
    )
    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.system_fingerprint == second.system_fingerprint


def test_stop_sequence_ends_generation_before_it(azure: AzureOpenAI) -> None:
    messages = [{"role": "user", "content": "Count from 1 to 10 separated by commas."}]
    response = azure.chat.completions.create(
        model="gpt-4o", messages=messages, max_tokens=40, temperature=0, stop=["5"]
    )
    assert "5" not in response.choices[0].message.content
    assert response.choices[0].finish_reason == "stop"


def test_n_returns_that_many_choices(azure: AzureOpenAI) -> None:
    response = azure.chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=5, n=3, seed=1)
    assert [choice.index for choice in response.choices] == [0, 1, 2]
    assert response.usage.completion_tokens == 15


def test_penalties_and_top_p_are_accepted(azure: AzureOpenAI) -> None:
    response = azure.chat.completions.create(
        model="gpt-4o", messages=HELLO, max_tokens=5, presence_penalty=1.5, frequency_penalty=-1.0, top_p=0.5
    )
    assert response.usage.completion_tokens == 5


def test_json_object_mode_returns_a_json_object(azure: AzureOpenAI) -> None:
    response = azure.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Describe a cat as JSON."}],
        response_format={"type": "json_object"},
        max_tokens=80,
        temperature=0,
    )
    assert isinstance(json.loads(response.choices[0].message.content), dict)


def test_json_schema_mode_returns_an_object_matching_the_schema(azure: AzureOpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    response = azure.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Invent a person."}],
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}},
        max_tokens=60,
        temperature=0,
    )
    person = json.loads(response.choices[0].message.content)
    assert set(person) == {"name", "age"}
    assert isinstance(person["name"], str) and isinstance(person["age"], int)


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city", "unit"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}},
}


@pytest.mark.parametrize("tool_choice", ["required", {"type": "function", "function": {"name": "get_weather"}}])
def test_forced_tool_choice_returns_a_valid_tool_call(azure: AzureOpenAI, tool_choice: object) -> None:
    response = azure.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
        tools=[WEATHER, TIME],
        tool_choice=tool_choice,
        max_tokens=80,
        temperature=0,
    )
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.id.startswith("call_") and call.type == "function"
    arguments = json.loads(call.function.arguments)
    if isinstance(tool_choice, dict):
        assert call.function.name == "get_weather"
    if call.function.name == "get_weather":
        assert isinstance(arguments["city"], str) and arguments["unit"] in ("c", "f")
    else:
        assert isinstance(arguments["zone"], str)


def test_automatic_tool_choice_answers_with_text_or_a_valid_call(azure: AzureOpenAI) -> None:
    response = azure.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
        tools=[WEATHER],
        max_tokens=60,
        seed=3,
    )
    message = response.choices[0].message
    if message.tool_calls:
        assert json.loads(message.tool_calls[0].function.arguments)["city"]
    else:
        assert message.content and not message.content.startswith("<")


def test_tool_results_can_be_sent_back(azure: AzureOpenAI) -> None:
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "c"}'}}
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 21}'},
    ]
    response = azure.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER], tool_choice="none", max_tokens=20)
    assert response.choices[0].message.content


def test_streamed_tool_call_arrives_whole_in_one_delta(azure: AzureOpenAI) -> None:
    stream = azure.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=[WEATHER],
        tool_choice="required",
        stream=True,
        max_tokens=80,
    )
    calls, finish = [], None
    for chunk in stream:
        for choice in chunk.choices:
            calls += choice.delta.tool_calls or []
            finish = choice.finish_reason or finish
    assert finish == "tool_calls"
    assert len(calls) == 1 and json.loads(calls[0].function.arguments)["city"]


def test_stream_with_include_usage_ends_with_a_usage_chunk(azure: AzureOpenAI) -> None:
    chunks = list(
        azure.chat.completions.create(
            model="gpt-4o", messages=HELLO, max_tokens=6, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 6
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "length"


def test_streamed_choices_keep_their_index(azure: AzureOpenAI) -> None:
    seen = set()
    for chunk in azure.chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=3, n=2, stream=True):
        seen.update(choice.index for choice in chunk.choices)
    assert seen == {0, 1}


def test_legacy_completions_continue_the_prompt(azure: AzureOpenAI) -> None:
    response = azure.completions.create(model="gpt-4o", prompt="Once upon a time", max_tokens=8)
    assert response.object == "text_completion"
    assert response.choices[0].text
    assert response.usage.completion_tokens == 8


def test_legacy_completions_stream(azure: AzureOpenAI) -> None:
    texts = [c.choices[0].text for c in azure.completions.create(model="gpt-4o", prompt="The sky", max_tokens=5, stream=True)]
    assert "".join(texts)


def test_response_reports_the_underlying_model_and_azure_fields(azure: AzureOpenAI) -> None:
    raw = azure.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO, max_tokens=2)
    body = json.loads(raw.text)
    assert body["model"] == "smollm2-135m-instruct"
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["choices"][0]["logprobs"] is None
    assert body["choices"][0]["message"]["refusal"] is None
    assert body["system_fingerprint"].startswith("fp_")
    assert raw.headers["x-request-id"] == raw.headers["apim-request-id"]
