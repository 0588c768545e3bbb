"""`stockade batches …` as a user runs it: in process on the app's data directory, whose app (on the
fake models) runs the batches the command submits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import App, in_process

POLL = ("--poll-seconds", "0.02")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    with in_process(tmp_path_factory.mktemp("batches-cli"), STOCKADE_BATCH__POLL_SECONDS="0.02") as running:
        yield running


def request(custom_id: str, **body: object) -> dict[str, object]:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
            "body": {"messages": [{"role": "user", "content": "Hello"}], **body}}


def jsonl(path: Path, *requests: dict[str, object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in requests))
    return path


def submitted(app: App, file: Path, *options: str) -> dict:
    return app.cli_json("batches", "submit", str(file), "--deployment", "gpt-4o", "--wait", *POLL, *options)  # type: ignore[return-value]


def test_submit_wait_runs_the_file_and_shows_lines_done_failed_and_remaining(app: App, tmp_path: Path) -> None:
    file = jsonl(tmp_path / "in.jsonl", request("a"), request("b"), request("c"))
    result = app.cli("--json", "batches", "submit", str(file), "--deployment", "gpt-4o", "--wait", *POLL)
    batch = json.loads(result.stdout)
    assert batch["status"] == "completed"
    assert batch["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
    assert "3 done, 0 failed, 0 remaining" in result.stderr


def test_submit_gives_lines_without_a_model_the_deployment(app: App, tmp_path: Path) -> None:
    batch = submitted(app, jsonl(tmp_path / "in.jsonl", request("a"), request("b", model="gpt-4o")))
    assert batch["model"] == "gpt-4o"
    assert batch["request_counts"]["completed"] == 2


def test_submit_refuses_a_line_naming_another_deployment_before_uploading(app: App, tmp_path: Path) -> None:
    before = app.cli_json("files", "list")
    file = jsonl(tmp_path / "in.jsonl", request("a"), request("b", model="elsewhere"))
    result = app.cli("batches", "submit", str(file), "--deployment", "gpt-4o", check=False)
    assert result.returncode == 1
    assert "line 2" in result.stderr and "'elsewhere'" in result.stderr
    assert app.cli_json("files", "list") == before


def test_submit_reports_a_batch_the_server_refuses(app: App, tmp_path: Path) -> None:
    file = jsonl(tmp_path / "in.jsonl", request("a"))
    result = app.cli("batches", "submit", str(file), "--deployment", "nowhere", "--wait", *POLL, check=False)
    assert result.returncode == 1
    assert "nowhere" in result.stderr


# The fake model's context is 2,048 words (conftest's settings): a longer prompt fails its line.
def test_results_prints_one_line_per_request_and_errors_the_failed_ones(app: App, tmp_path: Path) -> None:
    file = jsonl(tmp_path / "in.jsonl", request("good"), request("bad", messages=[{"role": "user", "content": "word " * 3000}]))
    batch = submitted(app, file)
    assert batch["request_counts"] == {"total": 2, "completed": 1, "failed": 1}
    output = [json.loads(line) for line in app.cli("batches", "results", batch["id"]).stdout.splitlines()]
    assert [line["custom_id"] for line in output] == ["good"]
    failed = tmp_path / "errors.jsonl"
    app.cli("batches", "results", batch["id"], "--errors", "-o", str(failed))
    [error] = [json.loads(line) for line in failed.read_text().splitlines()]
    assert (error["custom_id"], error["response"]["status_code"], error["error"]) == ("bad", 400, None)


def test_results_says_when_there_is_no_error_file(app: App, tmp_path: Path) -> None:
    batch = submitted(app, jsonl(tmp_path / "in.jsonl", request("a")))
    result = app.cli("batches", "results", batch["id"], "--errors", check=False)
    assert result.returncode == 1
    assert "no line failed" in result.stderr


def test_list_shows_the_newest_batch_first_and_show_one(app: App, tmp_path: Path) -> None:
    batch = submitted(app, jsonl(tmp_path / "in.jsonl", request("a")))
    listed = app.cli_json("batches", "list")
    assert listed[0]["id"] == batch["id"]  # type: ignore[index]
    assert app.cli_json("batches", "show", batch["id"])["status"] == "completed"  # type: ignore[index]
    table = app.cli("batches", "list").stdout
    assert batch["id"] in table and "completed" in table


def test_cancel_stops_a_batch_before_it_runs(tmp_path: Path) -> None:
    # The runner looks once when the app starts, then not for an hour: the batch waits.
    with in_process(tmp_path, STOCKADE_BATCH__POLL_SECONDS="3600") as idle:
        batch = idle.cli_json("batches", "submit", str(jsonl(tmp_path / "in.jsonl", request("a"))), "--deployment", "gpt-4o")
        cancelled = idle.cli_json("batches", "cancel", batch["id"])  # type: ignore[index]
    assert cancelled["status"] in ("cancelling", "cancelled")  # type: ignore[index]
    assert cancelled["cancelling_at"] is not None  # type: ignore[index]
