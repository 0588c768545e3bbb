"""PHI protection and PII on completions end to end: the openai SDK against a real `stockade
serve` over loopback, in front of an upstream that echoes what it is sent. The upstream (the
backend) must see placeholders, the client the values, streamed or not; an identifier the
upstream writes itself must not reach the client under a policy that blocks PII in completions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import AzureOpenAI

from conftest import API_VERSION, RESPONSES_API_VERSION, Server, server_env, serving
from json_server import serve

pytestmark = [pytest.mark.server, pytest.mark.model]  # a server process, and Presidio's spaCy model

SSN = "345-67-8912"
PHONE = "617-555-0143"
PIECE = 3  # characters per streamed chunk: every placeholder arrives cut in pieces
RECEIVED: list[str] = []


def echoed(request: dict[str, Any]) -> str:
    return str(request["messages"][-1]["content"])


def reply(_method: str, _path: str, request: Any) -> tuple[int, dict[str, str], bytes]:
    text = echoed(request)
    RECEIVED.append(text)
    head = {"id": "chatcmpl-echo", "created": 1700000000, "model": "echo"}
    if not request.get("stream"):
        body = {**head, "object": "chat.completion", "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
        ], "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}}
        return 200, {"content-type": "application/json"}, json.dumps(body).encode()
    events = [
        {**head, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text[i:i + PIECE]}}]}
        for i in range(0, len(text), PIECE)
    ]
    events.append({**head, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    sse = "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"
    return 200, {"content-type": "text/event-stream"}, sse.encode()


@pytest.fixture(scope="module")
def protected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir: Path = tmp_path_factory.mktemp("phi-server")
    with serve(reply) as port:
        config = data_dir / "stockade.toml"
        config.write_text(f'[upstreams.echo]\nurl = "http://127.0.0.1:{port}/v1"\nmodels = ["echo"]\n')
        env = server_env(data_dir, STOCKADE_CONFIG=str(config))
        policies = {
            "clinic": ("--phi", "redact"),
            "replies": ("--pii", "block"),
            "clinic-replies": ("--phi", "redact", "--pii", "block"),
        }
        with serving(env, data_dir, [(name, "echo", 100, "echo") for name in policies]) as running:
            for name, options in policies.items():
                running.cli("content-filters", "create", name, *options)
                running.cli("deployments", "update", name, "--content-filter", name)
            running.settle()
            yield running


@pytest.fixture(scope="module")
def client(protected: Server) -> AzureOpenAI:
    return AzureOpenAI(azure_endpoint=protected.url + "/", api_key=protected.key, api_version=API_VERSION)


PROMPT = f"Patient Jane Doe, SSN {SSN}, asked about her results."
REDACTED = "Patient <PERSON_1>, SSN <US_SSN_1>, asked about her results."


def test_the_backend_sees_placeholders_and_the_client_the_values(client: AzureOpenAI) -> None:
    completion = client.chat.completions.create(model="clinic", messages=[{"role": "user", "content": PROMPT}])
    assert RECEIVED[-1] == REDACTED
    assert completion.choices[0].message.content == PROMPT


def test_a_streamed_reply_has_the_values_and_never_a_piece_of_a_placeholder(client: AzureOpenAI) -> None:
    stream = client.chat.completions.create(
        model="clinic", messages=[{"role": "user", "content": PROMPT}], stream=True
    )
    pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert RECEIVED[-1] == REDACTED
    assert "".join(pieces) == PROMPT
    assert not any("<" in piece or ">" in piece or "_1" in piece for piece in pieces)


def test_a_response_of_the_responses_api_is_protected_as_a_chat_completion_is(protected: Server) -> None:
    client = AzureOpenAI(azure_endpoint=protected.url + "/", api_key=protected.key, api_version=RESPONSES_API_VERSION)
    response = client.responses.create(model="clinic", input=PROMPT)
    assert RECEIVED[-1] == REDACTED
    assert response.output_text == PROMPT
    events = list(client.responses.create(model="clinic", input=PROMPT, stream=True))
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert RECEIVED[-1] == REDACTED
    assert "".join(deltas) == PROMPT and not any("<" in delta or ">" in delta for delta in deltas)


def streamed(client: AzureOpenAI, deployment: str, prompt: str) -> tuple[str, str | None]:
    """The text a stream sends, and how its choice finishes."""
    stream = client.chat.completions.create(
        model=deployment, messages=[{"role": "user", "content": prompt}], stream=True
    )
    chunks = [c for c in stream if c.choices]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices[0].delta)
    return text, chunks[-1].choices[0].finish_reason


def test_an_identifier_the_model_writes_is_never_sent_under_a_policy_blocking_pii(client: AzureOpenAI) -> None:
    filler = "The weather today is mild and the harbour is quiet; ships come in slowly. " * 2
    reply = f"{filler}Call {PHONE} if needed. {filler}"
    text, finish = streamed(client, "replies", reply)
    assert finish == "content_filter"
    assert reply.startswith(text) and len(text) <= reply.index(PHONE)


def test_values_put_back_by_phi_protection_pass_a_policy_blocking_pii(client: AzureOpenAI) -> None:
    assert streamed(client, "clinic-replies", PROMPT) == (PROMPT, "stop")
    assert RECEIVED[-1] == REDACTED
