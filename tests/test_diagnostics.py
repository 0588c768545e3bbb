"""The diagnostic log: a JSON line per request in the shape of Azure's RequestResponse category,
with no body or query string, written in batches rather than per request."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import App, in_process
from fake_model import CHAT_MODEL
from stockade.telemetry.diagnostics import DiagnosticLog, Entry

SECRET_PROMPT = "my card number is 4111 1111 1111 1111"


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[App, Path]]:
    data_dir = tmp_path_factory.mktemp("diagnostics")
    path = data_dir / "diagnostics.jsonl"
    # Written only when a test flushes: never behind its back.
    with in_process(data_dir, STOCKADE_TELEMETRY__DIAGNOSTIC_LOG=str(path),
                    STOCKADE_TELEMETRY__DIAGNOSTIC_FLUSH_SECONDS="3600") as app:
        yield app, path


def lines_of(app: App, path: Path, request_id: str) -> list[dict[str, Any]]:
    diagnostics = app.resource.diagnostics
    assert diagnostics is not None
    app.call(diagnostics.flush)
    lines = [json.loads(text) for text in path.read_text().splitlines()]
    return [line for line in lines if line["correlationId"] == request_id]


def test_a_call_is_one_requestresponse_line_with_its_metadata(logged: tuple[App, Path]) -> None:
    app, path = logged
    raw = app.azure().chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Say hi"}], max_tokens=3
    )
    reply = raw.parse()
    [line] = lines_of(app, path, raw.headers["x-request-id"])
    assert line["category"] == "RequestResponse"
    assert line["operationName"] == "ChatCompletions_Create"
    assert line["resultSignature"] == "200"
    assert isinstance(line["durationMs"], int) and line["durationMs"] >= 0
    assert line["time"].endswith("Z")
    assert line["callerIpAddress"] == "127.0.0.1:50000"
    properties = line["properties"]
    assert properties["deployment"] == "gpt-4o" and properties["model"] == CHAT_MODEL
    assert properties["principal"] == "key1" and properties["principalId"]
    assert reply.usage is not None
    assert properties["promptTokens"] == reply.usage.prompt_tokens
    assert properties["completionTokens"] == reply.usage.completion_tokens
    assert properties["streamType"] == "NonStreaming"
    assert properties["requestId"] == properties["apimRequestId"] == raw.headers["apim-request-id"]


def test_a_streamed_call_is_marked_streaming(logged: tuple[App, Path]) -> None:
    app, path = logged
    with app.azure().chat.completions.with_streaming_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Say hi"}], max_tokens=3, stream=True
    ) as response:
        list(response.iter_lines())
        request_id = response.headers["x-request-id"]
    [line] = lines_of(app, path, request_id)
    assert line["properties"]["streamType"] == "Streaming"


def test_no_body_or_query_string_reaches_the_log(logged: tuple[App, Path]) -> None:
    app, path = logged
    raw = app.azure().chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": SECRET_PROMPT}], max_tokens=3
    )
    [line] = lines_of(app, path, raw.headers["x-request-id"])
    text = json.dumps(line)
    assert "4111" not in text
    assert "api-version" not in text and line["properties"]["path"] == "/openai/deployments/gpt-4o/chat/completions"
    assert raw.parse().choices[0].message.content not in text


def test_a_request_that_is_not_a_call_is_logged_with_its_method(logged: tuple[App, Path]) -> None:
    app, path = logged
    response = app.http().get("/openai/deployments")
    [line] = lines_of(app, path, response.headers["x-request-id"])
    assert line["operationName"] == "GET" and line["properties"]["path"] == "/openai/deployments"
    assert line["properties"]["deployment"] is None


def test_lines_wait_for_the_flush_rather_than_being_written_per_request(tmp_path: Path) -> None:
    stream = io.StringIO()
    log = DiagnosticLog(stream)
    log.add(Entry(1_800_000_000.25, ("10.0.0.7", 50123), "POST", "/openai/v1/chat/completions",
                  "ChatCompletions_Create", 200, 1.4, "req-1", "gpt-4o", CHAT_MODEL, "key1", "id-1",
                  5, 9, False))
    log.add(Entry(1_800_000_001.0, None, "GET", "/healthz", "unknown", 200, 0.1, "req-2",
                  None, None, None, None, 0, 0, False))
    assert stream.getvalue() == ""
    log.flush()
    first, second = (json.loads(text) for text in stream.getvalue().splitlines())
    assert first["time"] == "2027-01-15T08:00:00.250Z" and first["durationMs"] == 1
    assert first["callerIpAddress"] == "10.0.0.7:50123" and second["callerIpAddress"] == "-"
    assert second["operationName"] == "GET"


def test_off_writes_no_log(tmp_path: Path) -> None:
    with in_process(tmp_path, STOCKADE_TELEMETRY__DIAGNOSTIC_LOG="off") as app:
        assert app.resource.diagnostics is None
