"""The user's guide's Batch API code, run unchanged (endpoint and key aside) against a real
`stockade serve` in front of the mock upstream: with `AzureOpenAI` on the classic routes, and with
the plain `OpenAI` client on /openai/v1/. Only its minute's wait between polls is replaced: by a
wait until the server's batches have ended."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import AzureOpenAI, OpenAI

from conftest import API_VERSION, Server, mock_upstream, server_env, serving

pytestmark = pytest.mark.server

# A hang guard, not a timing: the batch is short, and a server that never finishes it fails here.
LONGEST_WAIT_SECONDS = 120
ENDED = ("completed", "failed", "expired", "cancelled")

documents = [
    "The quarterly report shows revenue up 4% on last year.",
    "Please summarise the attached meeting notes in two lines.",
    "Classify this ticket: the printer on floor 3 is jammed again.",
]


@pytest.fixture(scope="module")
def batch_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir: Path = tmp_path_factory.mktemp("batch-server")
    with mock_upstream() as upstream:
        config = data_dir / "stockade.toml"
        config.write_text(f'[upstreams.mock]\nurl = "{upstream}/v1"\nmodels = ["mock-model"]\n')
        env = server_env(data_dir, STOCKADE_CONFIG=str(config), STOCKADE_BATCH__POLL_SECONDS="0.1")
        # The deployment is named as the guide's lines name it.
        with serving(env, data_dir, [("gpt-4o", "mock-model", 100, "mock")]) as running:
            yield running


@pytest.fixture
def short_sleeps(batch_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guide waits a minute between polls: instead, until every batch on the server has
    ended, so that its next retrieve finds its batch done."""
    sleep = time.sleep

    def batches_ended() -> bool:
        listed = httpx.get(f"{batch_server.url}/openai/v1/batches", headers={"api-key": batch_server.key})
        return all(batch["status"] in ENDED for batch in listed.json()["data"])

    def until_the_batches_end(_seconds: float) -> None:
        deadline = time.monotonic() + LONGEST_WAIT_SECONDS
        while not batches_ended():
            assert time.monotonic() < deadline, "the server's batches never ended"
            sleep(0.02)

    monkeypatch.setattr(time, "sleep", until_the_batches_end)


def the_guide(client: AzureOpenAI | OpenAI) -> str:
    """The guide's code, lines 185-210 of its text, as it stands."""
    import json

    # Prepare batch requests as JSONL
    requests = [
        {"custom_id": f"req-{i}", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "gpt-4o", "messages": [{"role": "user", "content": doc}], "max_tokens": 200}}
        for i, doc in enumerate(documents)
    ]

    with open("batch_requests.jsonl", "w") as f:
        for req in requests:
            f.write(json.dumps(req) + "\n")

    # Upload and submit
    batch_file = client.files.create(file=open("batch_requests.jsonl", "rb"), purpose="batch")  # noqa: SIM115
    batch = client.batches.create(
        input_file_id=batch_file.id,
        endpoint="/v1/chat/completions",
        completion_window="24h"
    )

    # Poll for completion
    import time
    while batch.status not in ["completed", "failed", "cancelled"]:
        time.sleep(60)
        batch = client.batches.retrieve(batch.id)

    # Retrieve results
    results = client.files.content(batch.output_file_id).text
    return results


def output_lines(results: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in results.splitlines() if line.strip()]


def assert_one_answer_per_document(results: str) -> None:
    lines = output_lines(results)
    assert sorted(line["custom_id"] for line in lines) == sorted(f"req-{i}" for i in range(len(documents)))
    for line in lines:
        assert line["error"] is None
        assert line["response"]["status_code"] == 200
        assert line["response"]["body"]["choices"][0]["message"]["content"]


@pytest.mark.usefixtures("short_sleeps")
def test_the_guides_batch_code_runs_with_azure_openai_on_the_classic_routes(batch_server: Server) -> None:
    client = AzureOpenAI(azure_endpoint=batch_server.url + "/", api_key=batch_server.key, api_version=API_VERSION)
    assert_one_answer_per_document(the_guide(client))


@pytest.mark.usefixtures("short_sleeps")
def test_the_guides_batch_code_runs_with_plain_openai_on_the_v1_routes(batch_server: Server) -> None:
    client = OpenAI(base_url=batch_server.url + "/openai/v1/", api_key=batch_server.key)
    assert_one_answer_per_document(the_guide(client))


def test_stockade_batches_submit_waits_for_a_server_over_http(batch_server: Server, tmp_path: Path) -> None:
    # Lines without body.model: submit names the deployment in each, so the upload is sent as it
    # is rewritten (no length known in advance).
    file = tmp_path / "in.jsonl"
    file.write_text("".join(
        json.dumps({"custom_id": f"cli-{i}", "method": "POST", "url": "/chat/completions",
                    "body": {"messages": [{"role": "user", "content": doc}], "max_tokens": 20}}) + "\n"
        for i, doc in enumerate(documents)
    ))
    remote = ("--endpoint", batch_server.url, "--api-key", batch_server.key)
    batch = batch_server.cli_json(*remote, "batches", "submit", str(file), "--deployment", "gpt-4o", "--wait",
                                  "--poll-seconds", "0.05")
    assert isinstance(batch, dict) and batch["status"] == "completed"
    results = batch_server.cli(*remote, "batches", "results", batch["id"]).stdout
    assert sorted(line["custom_id"] for line in output_lines(results)) == [f"cli-{i}" for i in range(len(documents))]
