"""A batch input file is checked line by line as it is uploaded: each problem is a 400 in Azure's
envelope naming the line(s), and a refused file leaves nothing stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import API_VERSION, App, in_process
from stockade.store.tables import file_chunks, files

MAX_LINES = 5
MAX_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    with in_process(
        tmp_path_factory.mktemp("validation"),
        STOCKADE_BATCH__MAX_FILE_LINES=str(MAX_LINES),
        STOCKADE_BATCH__MAX_FILE_BYTES=str(MAX_BYTES),
    ) as running:
        yield running


def line(custom_id: str | None = "r-1", *, url: str = "/chat/completions", deployment: str = "gpt-4o",
         **fields: Any) -> bytes:
    request: dict[str, Any] = {
        "method": "POST",
        "url": url,
        "body": {"model": deployment, "messages": [{"role": "user", "content": "Hi"}]},
    }
    if custom_id is not None:
        request["custom_id"] = custom_id
    for name, value in fields.items():
        if name == "body":
            request["body"].update(value)
        else:
            request[name] = value
    return json.dumps(request).encode() + b"\n"


def upload(app: App, content: bytes) -> Any:
    with app.http() as http:
        return http.post(
            "/openai/files", params={"api-version": API_VERSION},
            data={"purpose": "batch"}, files={"file": ("input.jsonl", content, "application/jsonl")},
        )


def refused(app: App, content: bytes, code: str) -> str:
    response = upload(app, content)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code
    return str(error["message"])


def test_a_line_that_is_not_json_is_refused_naming_its_line(app: App) -> None:
    message = refused(app, line("a") + b'{"custom_id": "b", \n', "invalid_json_line")
    assert "line 2:" in message


def test_a_line_without_a_custom_id_is_refused_naming_its_line(app: App) -> None:
    message = refused(app, line("a") + line("b") + line(None), "invalid_request")
    assert "line 3: custom_id is missing" in message


def test_a_file_with_a_duplicate_custom_id_is_refused_naming_both_lines(app: App) -> None:
    message = refused(app, line("a") + line("b") + line("a"), "duplicate_custom_id")
    assert "line 3:" in message and "also on line 1" in message


def test_a_line_calling_an_unsupported_url_is_refused(app: App) -> None:
    message = refused(app, line("a", url="/completions"), "url_mismatch")
    assert "line 1:" in message and "/chat/completions" in message


def test_lines_calling_different_urls_are_refused_naming_both_lines(app: App) -> None:
    message = refused(app, line("a") + line("b", url="/embeddings"), "url_mismatch")
    assert "line 2:" in message and "on line 1" in message


def test_lines_naming_different_deployments_are_refused_naming_both_lines(app: App) -> None:
    message = refused(app, line("a") + line("b", deployment="gpt-4o-mini"), "model_mismatch")
    assert "line 2:" in message and "on line 1" in message


def test_a_file_starting_with_a_byte_order_mark_is_refused_in_azures_words(app: App) -> None:
    message = refused(app, b"\xef\xbb\xbf" + line("a"), "invalid_request")
    assert "line 1: A valid model deployment name couldn't be extracted from the input file" in message
    assert "without a BOM" in message


def test_a_file_with_more_lines_than_the_limit_is_refused(app: App) -> None:
    content = b"".join(line(f"r-{n}") for n in range(MAX_LINES + 1))
    message = refused(app, content, "too_many_tasks")
    assert f"line {MAX_LINES + 1}:" in message and str(MAX_LINES) in message


def test_a_file_larger_than_the_limit_is_refused(app: App) -> None:
    padding = "x" * 1000
    content = b"".join(line(f"r-{n}", body={"user": padding}) for n in range(MAX_BYTES // 1000 + 1))
    message = refused(app, content, "file_too_large")
    assert str(MAX_BYTES) in message and "batch.max_file_bytes" in message


def test_an_empty_file_is_refused(app: App) -> None:
    message = refused(app, b"\n\n", "empty_file")
    assert "line 1:" in message


def test_a_line_whose_method_is_not_post_is_refused(app: App) -> None:
    message = refused(app, line("a", method="GET"), "invalid_request")
    assert "line 1: method must be \"POST\"" in message


def test_a_line_asking_for_a_stream_is_refused(app: App) -> None:
    message = refused(app, line("a") + line("b", body={"stream": True}), "invalid_request")
    assert "line 2: body.stream must not be true" in message


def test_a_line_whose_body_is_not_a_request_is_refused_naming_the_field(app: App) -> None:
    message = refused(app, line("a", body={"messages": []}), "invalid_request")
    assert "line 1: body.messages" in message


def test_every_problem_of_a_file_is_named(app: App) -> None:
    message = refused(app, line(None) + line("b", method="PUT") + line("b"), "invalid_request")
    assert "line 1:" in message and "line 2:" in message and "line 3:" in message


def test_a_refused_file_leaves_nothing_stored(app: App) -> None:
    refused(app, line("a") + line("a"), "duplicate_custom_id")
    with app.resource.store.engine.connect() as connection:
        assert connection.scalar(sa.select(sa.func.count()).select_from(files)) == 0
        assert connection.scalar(sa.select(sa.func.count()).select_from(file_chunks)) == 0


def test_a_file_for_another_purpose_is_stored_as_it_is(app: App, tmp_path: Path) -> None:
    with app.http() as http:
        response = http.post(
            "/openai/v1/files", data={"purpose": "assistants"},
            files={"file": ("notes.txt", b"not json at all", "text/plain")},
        )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "processed"
    app.call(app.resource.files.delete, response.json()["id"])
