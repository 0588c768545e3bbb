"""Bad input gets a clear 4xx in Azure's error envelope: never a 500, and never a hung connection.

In process against the app on the fake model, but for what needs the real one (its tokenizer's
context check) or real sockets (a client that hangs up)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai import AzureOpenAI

from conftest import API_VERSION, App, Server, in_process
from stockade.api import inference
from stockade.api.api_versions import SUPPORTED_API_VERSIONS

CHAT = f"/openai/deployments/gpt-4o/chat/completions?api-version={API_VERSION}"
HELLO = [{"role": "user", "content": "Hello"}]


@pytest.fixture
def http(fake: App) -> Iterator[httpx.Client]:
    """The app in process, with key1 (this module's own, not conftest's real server)."""
    with fake.http() as client:
        yield client


@pytest.fixture
def sdk(fake: App) -> AzureOpenAI:
    return fake.azure()


def error_of(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["x-request-id"]
    return response.json()["error"]


def test_malformed_json_is_a_400(http: httpx.Client) -> None:
    error = error_of(http.post(CHAT, content=b'{"messages": [', headers={"content-type": "application/json"}), 400)
    assert error["code"] == "invalid_json"


def test_a_body_that_is_not_an_object_is_a_400(http: httpx.Client) -> None:
    assert error_of(http.post(CHAT, json=["messages"]), 400)["code"] == "invalid_type"


def test_wrong_type_names_the_parameter(http: httpx.Client) -> None:
    error = error_of(http.post(CHAT, json={"messages": HELLO, "temperature": "hot"}), 400)
    assert error["param"] == "temperature"
    assert error["type"] == "invalid_request_error"


def test_out_of_range_value_names_the_parameter(http: httpx.Client) -> None:
    assert error_of(http.post(CHAT, json={"messages": HELLO, "top_p": 3}), 400)["param"] == "top_p"


def test_bad_message_names_its_position(http: httpx.Client) -> None:
    error = error_of(http.post(CHAT, json={"messages": [{"role": "wizard", "content": "hi"}]}), 400)
    assert error["param"] == "messages[0].role"


def test_empty_messages_is_a_400(http: httpx.Client) -> None:
    assert error_of(http.post(CHAT, json={"messages": []}), 400)["param"] == "messages"


def test_missing_messages_is_a_400(http: httpx.Client) -> None:
    error = error_of(http.post(CHAT, json={"max_tokens": 5}), 400)
    assert error["code"] == "missing_required_parameter" and error["param"] == "messages"


def test_tool_choice_naming_an_absent_tool_is_a_400(http: httpx.Client) -> None:
    body = {"messages": HELLO, "tool_choice": {"type": "function", "function": {"name": "nope"}}}
    assert "nope" in error_of(http.post(CHAT, json=body), 400)["message"]


def test_tool_choice_whose_function_is_not_an_object_is_a_400(http: httpx.Client) -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    body = {"messages": HELLO, "tools": tools, "tool_choice": {"type": "function", "function": "f"}}
    assert error_of(http.post(CHAT, json=body), 400)["param"] == "tool_choice.function"


def test_a_logit_bias_key_that_is_not_a_token_id_is_a_400(http: httpx.Client) -> None:
    body = {"messages": HELLO, "logit_bias": {"hello": 5}}
    assert error_of(http.post(CHAT, json=body), 400)["param"] == "logit_bias"


def test_an_error_without_a_parameter_has_no_param_field(http: httpx.Client) -> None:
    # The spec types param as a string: an error about no one parameter leaves it out.
    error = error_of(http.post(CHAT, json=["messages"]), 400)
    assert "param" not in error and error["type"] == "invalid_request_error"


def test_an_unexpected_error_logs_no_request_text(
    http: httpx.Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The kind of failure that used to leak: an exception whose message quotes the body.
    def failing(_body_type: type, raw: bytes) -> None:
        raise ValueError(f"cannot use {raw.decode()}")

    monkeypatch.setattr(inference, "parse", failing)
    with caplog.at_level(logging.ERROR):
        response = http.post(CHAT, json={"messages": [{"role": "user", "content": "Canary-51d2"}]})
    assert response.status_code == 500
    assert "ValueError" in caplog.text and "Canary-51d2" not in caplog.text


def upstream_app(tmp_path: Path):  # type: ignore[no-untyped-def]
    """The app with one deployment on an upstream that is down (nothing reaches it)."""
    config = tmp_path / "stockade.toml"
    config.write_text('[upstreams.down]\nurl = "http://127.0.0.1:9/v1"\nmodels = ["ghost"]\n')
    return in_process(tmp_path, [("ghost", "ghost", 100)], STOCKADE_CONFIG=str(config))


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"seed": 2**64}, "seed"),
        ({"seed": -(2**63) - 1}, "seed"),
        ({"max_tokens": 2**70}, "max_tokens"),
        ({"some_future_field": {"x": [2**64]}}, "body"),
    ],
)
def test_an_integer_beyond_64_bits_is_a_400_on_an_upstream_deployment(
    tmp_path: Path, extra: dict, param: str
) -> None:
    # orjson, which writes the upstream's body, cannot write integers beyond 64 bits.
    with upstream_app(tmp_path) as app, app.http() as http:
        body = {"messages": HELLO, **extra}
        error = error_of(http.post("/openai/deployments/ghost/chat/completions",
                                   params={"api-version": API_VERSION}, json=body), 400)
    assert error["param"] == param


def test_body_over_the_size_limit_is_a_413(http: httpx.Client) -> None:
    huge = [{"role": "user", "content": "x" * (2 * 1024 * 1024)}]
    assert error_of(http.post(CHAT, json={"messages": huge}), 413)["code"] == "request_too_large"


def test_prompt_longer_than_the_context_is_context_length_exceeded(azure: AzureOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        azure.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hello " * 3000}], max_tokens=10
        )
    assert caught.value.code == "context_length_exceeded"
    assert "maximum context length is 2048 tokens" in caught.value.message


def test_streamed_request_too_long_fails_before_the_stream_starts(sdk: AzureOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hello " * 3000}], stream=True
        )
    assert caught.value.code == "context_length_exceeded"


def test_unknown_deployment_is_deployment_not_found(sdk: AzureOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.chat.completions.create(model="no-such-deployment", messages=HELLO)
    assert caught.value.code == "DeploymentNotFound"


def test_unknown_deployment_is_named_with_the_command_that_lists_them(sdk: AzureOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.chat.completions.create(model="no-such-deployment", messages=HELLO)
    message = caught.value.body["message"]  # type: ignore[index]
    assert "'no-such-deployment'" in message and "`stockade deployments list`" in message
    assert "5 minutes" not in message


def test_chat_on_an_embedding_deployment_is_operation_not_supported(sdk: AzureOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="text-embedding-3-small", messages=HELLO)
    assert caught.value.code == "OperationNotSupported"


@pytest.mark.parametrize("query", ["", "?api-version=1999-01-01"])
def test_missing_or_unknown_api_version_is_azures_404(http: httpx.Client, query: str) -> None:
    response = http.post(f"/openai/deployments/gpt-4o/chat/completions{query}", json={"messages": HELLO})
    error = error_of(response, 404)
    assert error["code"] == "404" and set(error) == {"code", "message"}


def test_a_missing_api_version_is_named_with_the_supported_ones(http: httpx.Client) -> None:
    message = error_of(http.post(CHAT.partition("?")[0], json={"messages": HELLO}), 404)["message"]
    assert "api-version" in message
    assert all(version in message for version in SUPPORTED_API_VERSIONS)


def test_an_unknown_api_version_is_repeated_with_the_supported_ones(http: httpx.Client) -> None:
    path = "/openai/deployments/gpt-4o/chat/completions?api-version=1999-01-01"
    message = error_of(http.post(path, json={"messages": HELLO}), 404)["message"]
    assert "'1999-01-01' is not supported" in message and API_VERSION in message


def test_an_unknown_api_version_on_a_v1_route_says_it_may_be_left_out(http: httpx.Client) -> None:
    response = http.post("/openai/v1/chat/completions?api-version=1999-01-01",
                         json={"model": "gpt-4o", "messages": HELLO})
    message = error_of(response, 404)["message"]
    assert "leave it out" in message and "latest" in message


@pytest.mark.parametrize("padding", [0, 4096])
def test_the_api_version_is_found_in_a_short_or_long_query_string(
    http: httpx.Client, padding: int
) -> None:
    # Short query strings are parsed once and remembered; long ones each time, never kept.
    query = f"?api-version={API_VERSION}" + (f"&pad={'x' * padding}" if padding else "")
    response = http.post(f"/openai/deployments/gpt-4o/chat/completions{query}",
                         json={"messages": HELLO, "max_tokens": 1})
    assert response.status_code == 200


def test_unknown_path_is_azures_404(http: httpx.Client) -> None:
    assert error_of(http.get("/openai/nowhere"), 404)["code"] == "404"


def test_wrong_key_is_azures_401(fake: App) -> None:
    client = fake.azure("0" * 32)
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert caught.value.code == "401"
    assert caught.value.message.startswith("Error code: 401")


def test_a_wrong_key_is_pointed_at_the_keys_commands_without_being_repeated(fake: App) -> None:
    wrong = "f00d" * 8
    with fake.anonymous(**{"api-key": wrong}) as client:
        message = error_of(client.post(CHAT, json={"messages": HELLO}), 401)["message"]
    assert "`stockade keys list`" in message and "`stockade keys regenerate key1`" in message
    assert "subscription" not in message and "regional" not in message
    assert wrong not in message


def test_missing_key_is_a_401(fake: App) -> None:
    response = fake.client.post(CHAT, json={"messages": HELLO})
    assert error_of(response, 401)["code"] == "401"


def test_a_missing_key_is_told_where_to_send_one(fake: App) -> None:
    message = error_of(fake.client.post(CHAT, json={"messages": HELLO}), 401)["message"]
    assert "no key or token was sent" in message and "`api-key` header" in message


def test_langchain_style_body_is_accepted(http: httpx.Client) -> None:
    body = {"model": None, "messages": HELLO, "max_completion_tokens": 3, "stream": False, "n": 1,
            "temperature": 0.0, "parallel_tool_calls": True, "some_future_field": {"x": 1}}
    assert http.post(CHAT, json=body).status_code == 200


def test_v1_route_without_model_is_a_400(http: httpx.Client) -> None:
    assert error_of(http.post("/openai/v1/chat/completions", json={"messages": HELLO}), 400)["param"] == "model"


def hello_seconds(azure: AzureOpenAI) -> float:
    started = time.monotonic()
    azure.chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=3)
    return time.monotonic() - started


def test_client_disconnect_stops_generation(server: Server, azure: AzureOpenAI) -> None:
    """The model serves one request at a time, so an abandoned long stream would delay the next."""
    alone = hello_seconds(azure)  # the same call on an idle model, on this machine, now
    with httpx.stream(
        "POST", server.url + CHAT, headers={"api-key": server.key}, timeout=60,
        json={"messages": [{"role": "user", "content": "Write a very long story."}], "max_tokens": 1900,
              "stream": True, "temperature": 1.0},
    ) as response:
        lines = response.iter_lines()
        for _ in range(6):
            next(lines)
    # Had the abandoned stream gone on, this call would wait for its other ~1,890 tokens first:
    # many times the call alone, whether the machine is fast or busy (the floor absorbs a pause
    # of the test process; 1,890 tokens take longer on any CPU this model runs on).
    assert hello_seconds(azure) < max(10 * alone, 2.0)
    deadline = time.monotonic() + 20
    while not (abandoned := [r for r in server.cli_json("usage", "list", "--limit", "5") if r["status"] == 499]):  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the abandoned call was never recorded"
        time.sleep(0.1)  # the usage batch is written every 0.1 s
    assert 0 < abandoned[0]["completion_tokens"] < 1900
