"""What a client sees when an upstream fails or misbehaves: Stockade's own errors, never the
upstream's body, secrets or address. The upstream is a loopback server answering as told; the
app runs in process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import API_VERSION, App, in_process
from json_server import serve

CHAT = f"/openai/deployments/flaky/chat/completions?api-version={API_VERSION}"
HELLO = {"messages": [{"role": "user", "content": "Hello"}]}
COMPLETION = {
    "id": "x", "object": "chat.completion", "created": 1, "model": "flaky-model",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hi"}}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
LEAKY = (
    b'Traceback (most recent call last):\n  File "/srv/upstream/app.py", line 12\n'
    b"psycopg.OperationalError: password=hunter2 host=db.internal"
)


class Upstream:
    """The next reply the loopback upstream gives: status, headers, body."""

    def __init__(self) -> None:
        self.reply: tuple[int, dict[str, str], bytes] = (200, {"content-type": "application/json"},
                                                         json.dumps(COMPLETION).encode())

    def answer(self, status: int, body: bytes | dict[str, Any], content_type: str = "application/json",
               **headers: str) -> None:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        self.reply = (status, {"content-type": content_type, **headers}, data)


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[Upstream, int]]:
    state = Upstream()
    with serve(lambda method, path, request: state.reply) as port:
        yield state, port


@pytest.fixture(scope="module")
def app(upstream: tuple[Upstream, int], tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    data_dir = tmp_path_factory.mktemp("flaky")
    config = data_dir / "stockade.toml"
    config.write_text(
        f'[upstreams.flaky]\nurl = "http://127.0.0.1:{upstream[1]}/v1"\napi_key = "sk-upstream-secret"\n'
        'models = ["flaky-model"]\n'
    )
    with in_process(data_dir, [("flaky", "flaky-model", 100)], STOCKADE_CONFIG=str(config)) as running:
        yield running


def post(app: App, body: dict[str, Any] = HELLO) -> httpx.Response:
    return app.client.post(CHAT, json=body, headers={"api-key": app.key})


def assert_nothing_of_the_upstream_shows(response: httpx.Response) -> None:
    for secret in ("hunter2", "Traceback", "/srv/", "db.internal", "sk-", "127.0.0.1"):
        assert secret not in response.text


def test_a_working_upstream_answers(app: App, upstream: tuple[Upstream, int]) -> None:
    upstream[0].answer(200, COMPLETION)
    response = post(app)
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"] == "Hi"


def test_an_upstream_server_error_is_a_502_without_its_body(app: App, upstream: tuple[Upstream, int]) -> None:
    upstream[0].answer(500, LEAKY, "text/plain")
    response = post(app)
    assert response.status_code == 502
    assert "'flaky'" in response.json()["error"]["message"]
    assert_nothing_of_the_upstream_shows(response)


@pytest.mark.parametrize("status", [401, 403])
def test_an_upstream_refusing_stockades_credentials_is_a_502_that_says_so(
    app: App, upstream: tuple[Upstream, int], status: int
) -> None:
    upstream[0].answer(status, {"error": {"message": "Incorrect API key provided: sk-up***et",
                                          "code": "invalid_api_key"}})
    response = post(app)
    assert response.status_code == 502  # not a 401: the client's own key is fine
    assert "refused Stockade's credentials" in response.json()["error"]["message"]
    assert_nothing_of_the_upstream_shows(response)


def test_an_upstream_client_error_keeps_its_status_code_and_message_and_nothing_else(
    app: App, upstream: tuple[Upstream, int]
) -> None:
    upstream[0].answer(400, {"error": {"message": "This model's maximum context length is 8192 tokens.",
                                       "code": "context_length_exceeded", "param": "messages",
                                       "type": "invalid_request_error", "internal": "node-7"}})
    response = post(app)
    assert response.status_code == 400
    assert response.json()["error"] == {"message": "This model's maximum context length is 8192 tokens.",
                                        "code": "context_length_exceeded", "param": "messages",
                                        "type": "invalid_request_error"}


def test_an_upstream_client_error_that_is_not_an_openai_error_is_a_502(
    app: App, upstream: tuple[Upstream, int]
) -> None:
    upstream[0].answer(404, b"<html><body>nginx: not found /srv/</body></html>", "text/html")
    response = post(app)
    assert response.status_code == 502
    assert_nothing_of_the_upstream_shows(response)


def test_an_upstreams_429_is_a_429_with_its_wait(app: App, upstream: tuple[Upstream, int]) -> None:
    upstream[0].answer(429, {"error": {"message": "Rate limit reached", "code": "rate_limit_exceeded"}},
                       **{"retry-after": "7"})
    response = post(app)
    assert response.status_code == 429 and response.headers["retry-after"] == "7"
    assert "'flaky'" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "body",
    [b"<html>Service temporarily down</html>", b"[1, 2]", b'{"choices": "none"}',
     b'{"choices": [{"message": "Hi"}]}', b'{"choices": [], "usage": {"prompt_tokens": "many"}}'],
    ids=["html", "a list", "choices not a list", "message not an object", "usage not a count"],
)
def test_a_reply_that_is_not_a_completion_is_a_502(
    app: App, upstream: tuple[Upstream, int], body: bytes
) -> None:
    upstream[0].answer(200, body)
    response = post(app)
    assert response.status_code == 502
    assert "not an OpenAI-compatible" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("text/html", b"<html>Maintenance</html>"),
     ("text/event-stream", b"data: {not json\n\n"),
     ("text/event-stream", b": nothing but comments\n\n")],
    ids=["html", "bad json", "no events"],
)
def test_a_stream_that_is_not_a_completion_is_a_502(
    app: App, upstream: tuple[Upstream, int], content_type: str, body: bytes
) -> None:
    upstream[0].answer(200, body, content_type)
    response = post(app, {**HELLO, "stream": True})
    assert response.status_code == 502
    assert "not an OpenAI-compatible" in response.json()["error"]["message"]
