"""`stockade serve --workers N`: several HTTP processes on one port, sharing one replica's limits
and models, with no Redis (the embedded default).

The rate-limit tests run in front of tests/mock_upstream.py, which counts what it is sent: what
the workers together let through.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import (
    API_VERSION,
    Server,
    children,
    launch,
    mock_upstream,
    run_cli,
    server_env,
    serving,
    stop,
)

pytestmark = pytest.mark.server  # `stockade serve --workers N` and the mock upstream

WINDOW = 10
MAX_TOKENS = 300
HELLO = [{"role": "user", "content": "Hello"}]


async def burst(server: Server, deployment: str, calls: int) -> list[httpx.Response]:
    """``calls`` chat calls at once, each on a connection of its own, so that the kernel hands
    them to whichever worker accepts first."""
    limits = httpx.Limits(max_connections=calls, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=60) as http:
        return await asyncio.gather(*(
            http.post(
                f"/openai/deployments/{deployment}/chat/completions",
                params={"api-version": API_VERSION},
                headers={"api-key": server.key},
                json={"messages": HELLO, "max_tokens": MAX_TOKENS},
            )
            for _ in range(calls)
        ))


def mock_env(data_dir: Path, upstream: str, workers: int) -> dict[str, str]:
    """A server of ``workers`` HTTP processes whose one model is the mock upstream's."""
    config = data_dir / "stockade.toml"
    config.write_text(f'[upstreams.mock]\nurl = "{upstream}/v1"\nmodels = ["mock-model"]\n')
    return server_env(data_dir, STOCKADE_CONFIG=str(config), STOCKADE_WORKERS=str(workers))


def window_now() -> int:
    return int(time.time() // WINDOW)


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_workers_share_one_window_limit_without_redis(workers: int, tmp_path: Path) -> None:
    with mock_upstream() as upstream:
        env = mock_env(tmp_path, upstream, workers)
        # 6,000 TPM and 36 RPM: 1,000 tokens and 6 calls per 10-second window. Each call reserves
        # 309 tokens (9 for the prompt, 300 for the reply), so three fit a window. A burst that
        # straddles two windows proves nothing, so each attempt has a deployment of its own, and
        # one that straddles is tried again on the next.
        names = [f"burst-{attempt}" for attempt in range(5)]
        for name in names:
            run_cli(env, "deployments", "create", "--name", name, "--model", "mock-model",
                    "--capacity", "6")
        server = launch(env, tmp_path)
        try:
            for name in names:
                httpx.delete(f"{upstream}/tally")
                window = window_now()
                results = asyncio.run(burst(server, name, 24))
                if window_now() == window:
                    break
            else:
                pytest.fail("every burst straddled a window boundary")
        finally:
            stop(server.process)
        assert sorted(r.status_code for r in results) == [200] * 3 + [429] * 21
        delivered = httpx.get(f"{upstream}/tally").json()
        assert len(delivered) == 3 and sum(tokens for _, tokens in delivered) <= 1000
        for refused in (r for r in results if r.status_code == 429):
            assert "token rate limit" in refused.json()["error"]["message"]
            assert 0 < int(refused.headers["retry-after-ms"]) <= WINDOW * 1000


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("workers")
    env = server_env(data_dir, STOCKADE_WORKERS="2")
    with serving(env, data_dir, [("gpt-4o", "smollm2-135m-instruct", 500)]) as running:
        yield running


def test_the_local_model_runs_once_for_all_workers(two_workers: Server) -> None:
    # The main process's children: multiprocessing's resource tracker, the one llama.cpp worker
    # (local.chat_workers = 1), the two HTTP workers and the batch process; none of those has a
    # model of its own.
    main = two_workers.process.pid
    assert len(children(main)) == 1 + 1 + 2 + 1
    assert all(children(child) == [] for child in children(main))


def test_every_worker_answers_chat_from_the_shared_model(two_workers: Server) -> None:
    for _ in range(6):  # a new connection each time, so both workers answer some
        with httpx.Client(base_url=two_workers.url, headers={"api-key": two_workers.key}) as http:
            response = http.post(
                "/openai/deployments/gpt-4o/chat/completions",
                params={"api-version": API_VERSION},
                json={"messages": HELLO, "max_tokens": 4},
                timeout=60,
            )
        assert response.status_code == 200
        assert response.json()["usage"]["completion_tokens"] == 4


def test_a_stream_from_the_shared_model_arrives_whole(two_workers: Server) -> None:
    client = openai.AzureOpenAI(azure_endpoint=two_workers.url + "/", api_key=two_workers.key,
                                api_version=API_VERSION)
    chunks = list(client.chat.completions.create(
        model="gpt-4o", messages=HELLO, max_tokens=8, stream=True,
        stream_options={"include_usage": True},
    ))
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 8
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_a_deployment_created_while_serving_reaches_every_worker(two_workers: Server) -> None:
    two_workers.cli("deployments", "create", "--name", "late", "--model",
                    "smollm2-135m-instruct", "--capacity", "10")
    deadline = time.monotonic() + 10
    consecutive = 0
    while consecutive < 10:  # ten new connections in a row, wherever they land, all find it
        assert time.monotonic() < deadline, "a worker never saw the new deployment"
        with httpx.Client(base_url=two_workers.url, headers={"api-key": two_workers.key}) as http:
            response = http.post("/openai/v1/chat/completions",
                                 json={"model": "late", "messages": HELLO, "max_tokens": 1},
                                 timeout=60)
        consecutive = consecutive + 1 if response.status_code == 200 else 0


def usage_ids(server: Server) -> list[str]:
    with sqlite3.connect(server.data_dir / "stockade.db") as db:
        return [row[0] for row in db.execute("select request_id from usage_records")]


def test_usage_records_from_every_worker_land_once(tmp_path: Path) -> None:
    with mock_upstream() as upstream, serving(
        mock_env(tmp_path, upstream, 2), tmp_path, [("usage", "mock-model", 100)]
    ) as server:
        sent = []
        for _ in range(8):
            with httpx.Client(base_url=server.url, headers={"api-key": server.key}) as http:
                response = http.post("/openai/v1/chat/completions",
                                     json={"model": "usage", "messages": HELLO, "max_tokens": 1},
                                     timeout=60)
            sent.append(response.headers["x-request-id"])
    # The server has stopped: whatever each worker still held was written as it shut down.
    recorded = [request_id for request_id in usage_ids(server) if request_id in sent]
    assert sorted(recorded) == sorted(sent)


def admitted_calls(server: Server, deployment: str) -> float:
    with httpx.Client(base_url=server.url, headers={"api-key": server.key}) as http:
        metrics = http.get("/metrics").text
    prefix = f'stockade_rate_limit_decisions_total{{decision="admitted",deployment="{deployment}"}} '
    return next((float(row.removeprefix(prefix)) for row in metrics.splitlines()
                 if row.startswith(prefix)), 0.0)


def test_metrics_from_any_worker_count_every_workers_calls(two_workers: Server) -> None:
    before = admitted_calls(two_workers, "gpt-4o")
    for _ in range(6):
        with httpx.Client(base_url=two_workers.url, headers={"api-key": two_workers.key}) as http:
            http.post("/openai/v1/chat/completions",
                      json={"model": "gpt-4o", "messages": HELLO, "max_tokens": 1}, timeout=60)
    assert [admitted_calls(two_workers, "gpt-4o") for _ in range(4)] == [before + 6] * 4


def answered_calls(server: Server, deployment: str) -> tuple[float, float]:
    """From one scrape (whichever worker answers): calls answered with 200, and the model's
    running workers."""
    with httpx.Client(base_url=server.url, headers={"api-key": server.key}) as http:
        families = text_string_to_metric_families(http.get("/metrics").text)
    samples = [sample for family in families for sample in family.samples]
    calls = sum(s.value for s in samples if s.name == "stockade_requests_total"
                and s.labels["deployment"] == deployment and s.labels["status"] == "200")
    workers = sum(s.value for s in samples if s.name == "stockade_model_workers")
    return calls, workers


def test_call_series_and_model_gauges_from_any_worker_cover_the_whole_replica(two_workers: Server) -> None:
    before, _ = answered_calls(two_workers, "gpt-4o")
    for _ in range(4):
        with httpx.Client(base_url=two_workers.url, headers={"api-key": two_workers.key}) as http:
            http.post("/openai/v1/chat/completions",
                      json={"model": "gpt-4o", "messages": HELLO, "max_tokens": 1}, timeout=60)
    # The one model process serves both workers; every scrape reports it once, not per worker.
    assert [answered_calls(two_workers, "gpt-4o") for _ in range(4)] == [(before + 4, 1.0)] * 4
