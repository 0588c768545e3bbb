"""Content filtering through LangChain's ``AzureChatOpenAI`` and the openai SDK against a real
`stockade serve` on loopback. Its deployments are served by an upstream on loopback that says
what a ``say:`` prompt asks, in the pieces ``|`` separates (streamed as one chunk each), so that
a filtered reply needs no prompt holding the blocked term. Asked with tools, it calls the first
with ``{"city": <the said text>}``, streaming the arguments in those pieces, as upstreams do."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from langchain_openai import AzureChatOpenAI

from conftest import (
    API_VERSION,
    Server,
    launch,
    run_cli,
    server_env,
    stop,
    streamed_tool_calls,
    with_store,
)
from json_server import serve

pytestmark = pytest.mark.server

HELD = "held"  # the "words" list, blocking streams
BEHIND = "behind"  # the same list, asynchronous streams
INNOCENT = "The weather today is mild and the harbour is quiet; ships come in slowly. " * 3


def said(request: dict[str, Any]) -> list[str]:
    text = str(request["messages"][-1]["content"])
    return text.removeprefix("say:").split("|") if text.startswith("say:") else ["Hello."]


def chunk(choice: dict[str, Any], usage: dict[str, int] | None = None) -> bytes:
    body = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "say-model",
            "choices": [choice] if choice else [], "usage": usage}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def sayer(method: str, path: str, request: Any) -> tuple[int, dict[str, str], bytes]:
    """An OpenAI-compatible upstream whose reply is the ``say:`` text."""
    parts = said(request)
    usage = {"prompt_tokens": 3, "completion_tokens": len(parts), "total_tokens": 3 + len(parts)}
    tool = request["tools"][0]["function"]["name"] if request.get("tools") else None
    finish = "tool_calls" if tool else "stop"
    if not request.get("stream"):
        message: dict[str, Any] = {"role": "assistant", "content": None if tool else "".join(parts)}
        if tool:
            arguments = json.dumps({"city": "".join(parts)})
            message["tool_calls"] = [{"id": "call_1", "type": "function", "function": {"name": tool, "arguments": arguments}}]
        body = {"id": "c", "object": "chat.completion", "created": 1, "model": "say-model", "usage": usage,
                "choices": [{"index": 0, "finish_reason": finish, "message": message}]}
        return 200, {"content-type": "application/json"}, json.dumps(body).encode()
    if tool:
        opening = {"index": 0, "id": "call_1", "type": "function", "function": {"name": tool, "arguments": ""}}
        pieces = ['{"city": "', *parts, '"}']
        deltas = [{"tool_calls": [opening]}] + [{"tool_calls": [{"index": 0, "function": {"arguments": p}}]} for p in pieces]
    else:
        deltas = [{"content": part} for part in parts]
    events = [chunk({"index": 0, "delta": delta, "finish_reason": None}) for delta in deltas]
    events += [chunk({"index": 0, "delta": {}, "finish_reason": finish}), chunk({}, usage), b"data: [DONE]\n\n"]
    return 200, {"content-type": "text/event-stream"}, b"".join(events)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir: Path = tmp_path_factory.mktemp("langchain")
    with serve(sayer) as port:
        config = data_dir / "stockade.toml"
        config.write_text(f'[upstreams.sayer]\nurl = "http://127.0.0.1:{port}/v1"\nmodels = ["say-model"]\n')
        env = with_store(server_env(data_dir, STOCKADE_CONFIG=str(config)))
        for args in (
            ("blocklists", "create", "words"),
            ("blocklists", "add-item", "words", "forbidden"),
            ("content-filters", "create", "held", "--blocklist", "words"),
            ("content-filters", "create", "behind", "--blocklist", "words", "--streaming", "asynchronous"),
        ):
            run_cli(env, *args)
        for name in (HELD, BEHIND):
            run_cli(env, "deployments", "create", "--name", name, "--model", "say-model", "--backend", "sayer",
                    "--capacity", "100")
            run_cli(env, "deployments", "update", name, "--content-filter", name)
        running = launch(env, data_dir)
        try:
            yield running
        finally:
            stop(running.process)


def chat(server: Server, deployment: str) -> AzureChatOpenAI:
    return AzureChatOpenAI(
        azure_endpoint=server.url, api_key=server.key, api_version=API_VERSION,  # type: ignore[arg-type]
        azure_deployment=deployment, max_retries=0,
    )


def test_langchain_raises_a_blocked_prompt_as_bad_request_content_filter(server: Server) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        chat(server, HELD).invoke("tell me what is forbidden")
    assert raised.value.code == "content_filter"
    assert raised.value.body["innererror"]["content_filter_result"]["custom_blocklists"]["filtered"]  # type: ignore[index]


def test_langchain_raises_a_filtered_completion_as_value_error(server: Server) -> None:
    with pytest.raises(ValueError, match="content filter being triggered"):
        chat(server, HELD).invoke("say:the forb|idden word")


def test_langchain_keeps_the_results_of_a_clean_completion(server: Server) -> None:
    message = chat(server, HELD).invoke("say:All is well.")
    assert message.content == "All is well."
    assert message.response_metadata["content_filter_results"]["custom_blocklists"]["filtered"] is False


def test_langchain_ends_a_blocked_stream_with_content_filter(server: Server) -> None:
    chunks = list(chat(server, HELD).stream("say:" + INNOCENT + "|forb|idden| and more"))
    assert "forb" not in "".join(str(c.content) for c in chunks)
    assert [c.response_metadata.get("finish_reason") for c in chunks if c.response_metadata.get("finish_reason")] == [
        "content_filter"
    ]


def test_langchain_streams_an_asynchronous_stream_with_its_annotations(server: Server) -> None:
    text = "".join(str(c.content) for c in chat(server, BEHIND).stream("say:" + INNOCENT.replace(" ", "| ")))
    assert text == INNOCENT


def test_langchain_stops_an_asynchronous_stream_at_a_violation(server: Server) -> None:
    # LangChain skips events without a delta, so the content_filter annotation that ends the
    # choice does not reach its chunks: the text just stops (docs/safety.md says so).
    after = " and the rest" * 20
    prompt = "say:" + INNOCENT + "|forb|idden|" + after.replace(" ", "| ")
    text = "".join(str(c.content) for c in chat(server, BEHIND).stream(prompt))
    assert text.startswith(INNOCENT + "forbidden")  # sent before it was screened
    assert len(text) < len(INNOCENT + "forbidden" + after)  # cut short once it was


def test_the_openai_sdk_reads_asynchronous_annotations_over_loopback(server: Server) -> None:
    client = openai.AzureOpenAI(azure_endpoint=server.url, api_key=server.key, api_version=API_VERSION, max_retries=0)
    stream = client.chat.completions.create(
        model=BEHIND, messages=[{"role": "user", "content": "say:" + INNOCENT.replace(" ", "| ")}], stream=True
    )
    chunks = list(stream)
    annotations = [c for c in chunks if c.id == "" and c.choices]
    assert annotations[-1].choices[0].model_dump()["content_filter_offsets"]["check_offset"] == len(INNOCENT)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices and c.choices[0].delta) == INNOCENT


WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}


def tool_stream(server: Server, deployment: str, said: str) -> list[Any]:
    """The chunks of a streamed call that offers the tool, through the openai SDK."""
    client = openai.AzureOpenAI(azure_endpoint=server.url, api_key=server.key, api_version=API_VERSION, max_retries=0)
    stream = client.chat.completions.create(
        model=deployment, messages=[{"role": "user", "content": "say:" + said}], tools=[WEATHER],  # type: ignore[list-item]
        stream=True,
    )
    return list(stream)


@pytest.mark.parametrize("deployment", [HELD, BEHIND])
def test_an_upstreams_streamed_tool_call_is_sent_whole_once_screened(server: Server, deployment: str) -> None:
    chunks = tool_stream(server, deployment, "Par|is")
    calls, finish = streamed_tool_calls(c for c in chunks if c.choices and c.choices[0].delta)
    assert finish == "tool_calls"
    assert [json.loads(c.function.arguments) for c in calls] == [{"city": "Paris"}]


@pytest.mark.parametrize("deployment", [HELD, BEHIND])
def test_an_upstreams_streamed_tool_call_with_a_blocked_term_is_never_sent(server: Server, deployment: str) -> None:
    choices = [c.choices[0] for c in tool_stream(server, deployment, "the forb|idden city") if c.choices]
    assert not any(c.delta and c.delta.tool_calls for c in choices)
    assert choices[-1].finish_reason == "content_filter"


def test_langchain_raises_a_blocked_tool_call_as_value_error(server: Server) -> None:
    with pytest.raises(ValueError, match="content filter being triggered"):
        chat(server, HELD).bind_tools([WEATHER]).invoke("say:the forb|idden city")


def test_langchain_gets_a_clean_tool_call(server: Server) -> None:
    message = chat(server, HELD).bind_tools([WEATHER]).invoke("say:Paris")
    assert [call["args"] for call in message.tool_calls] == [{"city": "Paris"}]  # type: ignore[attr-defined]
