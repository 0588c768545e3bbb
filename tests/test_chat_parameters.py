"""Chat and text completions honour the request's parameters: the API's side, in process against
the fake model (which gives one word per token). What the llama.cpp model does with them is in
test_llamacpp_chat.py."""

from __future__ import annotations

import json

import pytest
from openai import AzureOpenAI

from conftest import App, streamed_tool_calls
from fake_model import CHAT_MODEL

HELLO = [{"role": "user", "content": "Tell me about the sea."}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city", "unit"],
        },
    },
}


@pytest.fixture(scope="module")
def azure(fake: App) -> AzureOpenAI:
    return fake.azure()


def test_max_tokens_caps_the_completion_and_reports_length(azure: AzureOpenAI) -> None:
    response = azure.chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=7, temperature=1.5)
    assert response.usage.completion_tokens == 7
    assert len(response.choices[0].message.content.split()) == 7
    assert response.choices[0].finish_reason == "length"


def test_max_completion_tokens_works_like_max_tokens(azure: AzureOpenAI) -> None:
    response = azure.chat.completions.create(model="gpt-4o", messages=HELLO, max_completion_tokens=4)
    assert response.usage.completion_tokens == 4


def test_a_completion_the_model_ends_itself_finishes_with_stop(azure: AzureOpenAI) -> None:
    response = azure.chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=100)
    assert response.choices[0].finish_reason == "stop"
    assert response.usage.completion_tokens < 100


def test_prompt_tokens_are_the_models_count_of_the_messages(azure: AzureOpenAI) -> None:
    response = azure.chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=1)
    assert response.usage.prompt_tokens == 6  # five words and one per message, as the fake counts
    assert response.usage.total_tokens == 7


def test_n_returns_that_many_choices(azure: AzureOpenAI) -> None:
    response = azure.chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=5, n=3, seed=1)
    assert [choice.index for choice in response.choices] == [0, 1, 2]
    assert response.usage.completion_tokens == 15


def test_penalties_and_top_p_are_accepted(azure: AzureOpenAI) -> None:
    response = azure.chat.completions.create(
        model="gpt-4o", messages=HELLO, max_tokens=5, presence_penalty=1.5, frequency_penalty=-1.0, top_p=0.5
    )
    assert response.usage.completion_tokens == 5


def test_a_forced_tool_call_is_returned_as_tool_calls_without_content(azure: AzureOpenAI) -> None:
    response = azure.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER], tool_choice="required",
    )
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "c"}


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


def test_a_streamed_tool_call_arrives_in_a_delta_and_finishes_with_tool_calls(azure: AzureOpenAI) -> None:
    stream = azure.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "get_weather"}}, stream=True,
    )
    calls, finish = streamed_tool_calls(stream)
    assert finish == "tool_calls"
    assert len(calls) == 1 and json.loads(calls[0].function.arguments)["city"] == "Paris"


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


def test_a_stream_carries_the_same_text_as_the_whole_response(azure: AzureOpenAI) -> None:
    whole = azure.chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=6)
    stream = azure.chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=6, stream=True)
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert streamed == whole.choices[0].message.content


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
    assert response.usage.prompt_tokens == 4


def test_legacy_completions_default_to_sixteen_tokens(azure: AzureOpenAI) -> None:
    response = azure.completions.create(model="gpt-4o", prompt="Once upon a time")
    assert response.usage.completion_tokens == 16
    assert response.choices[0].finish_reason == "length"


def test_legacy_completions_stream(azure: AzureOpenAI) -> None:
    texts = [c.choices[0].text for c in azure.completions.create(model="gpt-4o", prompt="The sky", max_tokens=5, stream=True)]
    assert len("".join(texts).split()) == 5


def test_response_reports_the_underlying_model_and_azure_fields(azure: AzureOpenAI) -> None:
    raw = azure.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO, max_tokens=2)
    body = json.loads(raw.text)
    assert body["model"] == CHAT_MODEL
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["choices"][0]["logprobs"] is None
    assert body["choices"][0]["message"]["refusal"] is None
    assert body["system_fingerprint"].startswith("fp_")
    assert raw.headers["x-request-id"] == raw.headers["apim-request-id"]
