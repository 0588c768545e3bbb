"""Deployments served by an upstream OpenAI-compatible server.

The upstream here is another real Stockade server (running llama.cpp), reached once as a plain
OpenAI-compatible server (Bearer key, /v1 paths) and once as an Azure OpenAI resource (api-key
header, deployment paths, api-version). The catalogue and an upstream that is down need no
server: they run through the CLI and the app in process.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from openai import AzureOpenAI

from conftest import (
    API_VERSION,
    RESPONSES_API_VERSION,
    Server,
    in_process,
    run_cli,
    server_env,
    serving,
    with_store,
)

HELLO = [{"role": "user", "content": "Hello"}]


def upstreams(url: str, key: str) -> str:
    """The gateway's configuration: the upstream at ``url`` twice, and one that is down."""
    return f"""
[upstreams.vllm]
url = "{url}/openai/v1"
kind = "openai"
api_key = "{key}"
models = ["gpt-4o"]
embedding_models = ["text-embedding-3-small"]

[upstreams.azure-east]
url = "{url}/"
kind = "azure"
api_key = "{key}"
api_version = "{API_VERSION}"
models = ["gpt-4o"]

[upstreams.down]
url = "http://127.0.0.1:9/v1"
models = ["ghost"]
"""


@pytest.fixture(scope="module")
def gateway(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("gateway")
    config = data_dir / "stockade.toml"
    config.write_text(upstreams(server.url, server.key))
    env = {**server.env, "STOCKADE_DATA_DIR": str(data_dir), "STOCKADE_CONFIG": str(config)}
    deployments = [
        ("via-openai", "gpt-4o", 100, "vllm"),
        ("via-azure", "gpt-4o", 100, "azure-east"),
        ("embed", "text-embedding-3-small", 100),
        ("ghost", "ghost", 100),
    ]
    with serving(env, data_dir, deployments) as running:
        yield running


@pytest.fixture(scope="module")
def client(gateway: Server) -> AzureOpenAI:
    return AzureOpenAI(azure_endpoint=gateway.url + "/", api_key=gateway.key, api_version=API_VERSION, max_retries=0)


def configured(tmp_path: Path) -> dict[str, str]:
    """Settings for the CLI or the app with the gateway's upstreams (none of them called)."""
    config = tmp_path / "stockade.toml"
    config.write_text(upstreams("http://127.0.0.1:9", "unused"))
    return {"STOCKADE_CONFIG": str(config)}


def test_models_list_shows_upstream_models_with_their_backend(tmp_path: Path) -> None:
    listed = json.loads(run_cli(with_store(server_env(tmp_path, **configured(tmp_path))), "--json", "models", "list").stdout)
    models = {(m["id"], m["backend"]) for m in listed}
    assert {("gpt-4o", "vllm"), ("gpt-4o", "azure-east"), ("smollm2-135m-instruct", "local")} <= models


def test_model_offered_by_two_upstreams_needs_a_backend(tmp_path: Path) -> None:
    env = server_env(tmp_path, **configured(tmp_path))
    result = run_cli(env, "deployments", "create", "--name", "x", "--model", "gpt-4o", check=False)
    assert result.returncode == 1 and "azure-east, vllm" in result.stderr


@pytest.mark.parametrize("deployment", ["via-openai", "via-azure"])
def test_chat_passes_through_the_upstream(client: AzureOpenAI, deployment: str) -> None:
    response = client.chat.completions.create(model=deployment, messages=HELLO, max_tokens=4)
    assert response.usage.completion_tokens == 4
    assert response.model == "smollm2-135m-instruct"  # what the upstream reports


@pytest.mark.parametrize("deployment", ["via-openai", "via-azure"])
def test_stream_relays_chunks_and_usage(client: AzureOpenAI, deployment: str) -> None:
    chunks = list(
        client.chat.completions.create(
            model=deployment, messages=HELLO, max_tokens=6, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text and chunks[-1].usage.completion_tokens == 6


def test_tool_calls_pass_through(client: AzureOpenAI) -> None:
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}
    response = client.chat.completions.create(
        model="via-openai", messages=HELLO, tools=[tool], tool_choice="required", max_tokens=200, temperature=0
    )
    assert json.loads(response.choices[0].message.tool_calls[0].function.arguments)["q"] is not None


@pytest.fixture(scope="module")
def responses_client(gateway: Server) -> AzureOpenAI:
    return AzureOpenAI(azure_endpoint=gateway.url + "/", api_key=gateway.key, api_version=RESPONSES_API_VERSION,
                       max_retries=0)


@pytest.mark.parametrize("deployment", ["via-openai", "via-azure"])
def test_a_response_on_an_upstream_that_speaks_chat_is_translated(
    responses_client: AzureOpenAI, deployment: str,
) -> None:
    response = responses_client.responses.create(model=deployment, input="Hello", max_output_tokens=4)
    assert response.output_text and response.usage.output_tokens == 4  # type: ignore[union-attr]
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"  # type: ignore[union-attr]


def test_a_streamed_response_on_an_upstream_relays_its_deltas(responses_client: AzureOpenAI) -> None:
    events = list(responses_client.responses.create(model="via-openai", input="Hello", max_output_tokens=6, stream=True))
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert text and events[-1].response.output_text == text  # type: ignore[union-attr]


def test_a_function_call_on_an_upstream_comes_back_as_a_function_call_item(responses_client: AzureOpenAI) -> None:
    tool = {"type": "function", "name": "lookup",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}
    response = responses_client.responses.create(
        model="via-openai", input="Hello", tools=[tool], tool_choice="required", max_output_tokens=200, temperature=0,  # type: ignore[list-item]
    )
    [call] = response.output
    assert call.type == "function_call" and json.loads(call.arguments)["q"] is not None


def test_embeddings_pass_through(client: AzureOpenAI) -> None:
    response = client.embeddings.create(model="embed", input=["a", "b"])
    assert len(response.data) == 2 and len(response.data[0].embedding) == 384


def test_upstream_errors_keep_their_status_and_body(client: AzureOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="via-azure", messages=[{"role": "user", "content": "hi " * 3000}])
    assert caught.value.code == "context_length_exceeded"


def test_unreachable_upstream_is_a_503_that_says_what_to_check(tmp_path: Path) -> None:
    with in_process(tmp_path, [("ghost", "ghost", 100)], **configured(tmp_path)) as app, \
            pytest.raises(openai.InternalServerError) as caught:
        app.azure().chat.completions.create(model="ghost", messages=HELLO)
    assert caught.value.status_code == 503 and "could not be reached" in caught.value.message


def test_an_unreachable_upstreams_address_stays_in_the_servers_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with in_process(tmp_path, [("ghost", "ghost", 100)], **configured(tmp_path)) as app, \
            pytest.raises(openai.InternalServerError) as caught:
        app.azure().chat.completions.create(model="ghost", messages=HELLO)
    assert "'down'" in caught.value.message and "127.0.0.1:9" not in caught.value.message
    assert "http://127.0.0.1:9/v1" in caplog.text
