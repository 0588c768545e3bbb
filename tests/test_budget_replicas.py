"""A hard budget shared by two replicas through a real Redis: concurrent calls on both cannot
together spend past it.

The replicas run on one PostgreSQL schema in front of tests/mock_upstream.py, which counts the
calls it is sent. The mock model's price is 1 per completion token and nothing per prompt token,
and the mock writes max_tokens of completion, so a call with max_tokens 300 holds and costs 300.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import httpx
import openai
import pytest
from test_shared_limits import REDIS_URL, burst

from conftest import (
    mock_upstream,
    postgres_schema_url,
    replica_env,
    run_cli,
    start_replicas,
    stop,
)
from json_server import serve_json

pytestmark = [pytest.mark.server, pytest.mark.redis, pytest.mark.postgres]

PRICE = """
[billing]
currency = "EUR"
[[billing.prices]]
model = "mock-model"
input_per_million = 0
output_per_million = 1000000
"""


def test_concurrent_calls_on_two_replicas_cannot_overspend_a_budget_shared_through_redis(tmp_path: Path) -> None:
    with postgres_schema_url() as database_url, mock_upstream(delay=0.05) as upstream:
        env = replica_env(tmp_path, database_url, upstream, REDIS_URL)
        Path(env["STOCKADE_CONFIG"]).write_text(Path(env["STOCKADE_CONFIG"]).read_text() + PRICE)
        run_cli(env, "deployments", "create", "--name", "mock", "--model", "mock-model", "--capacity", "1000")
        # A fresh name: its Redis account is new, seeded from this fresh store.
        name = f"shared-{uuid.uuid4().hex[:8]}"
        run_cli(env, "budgets", "create", name, "--amount", "1000", "--scope", "resource", "--hard")
        replicas = start_replicas(env, tmp_path, 2)
        try:
            for replica in replicas:
                replica.settle()
            results = asyncio.run(burst(replicas, "mock", 24))  # max_tokens 300 each
            state = httpx.get(f"{replicas[0].url}/management/budgets/{name}",
                              headers={"api-key": replicas[0].key}).json()
        finally:
            for replica in replicas:
                stop(replica.process)
        refused = [r for r in results if isinstance(r, openai.RateLimitError)]
        assert len(results) - len(refused) == 3  # 3 x 300 = 900; a fourth would pass 1,000
        assert all(r.code == "insufficient_quota" for r in refused)
        assert len(httpx.get(f"{upstream}/tally").json()) == 3
        assert state["spent"] == 900 and state["held"] == 0 and state["currency"] == "EUR"


def test_a_threshold_both_replicas_see_crossed_fires_its_webhook_once(tmp_path: Path) -> None:
    received: list[object] = []
    with (
        postgres_schema_url() as database_url,
        mock_upstream() as upstream,
        serve_json(lambda _method, _path, body: received.append(body) or {}) as port,
    ):
        env = replica_env(tmp_path, database_url, upstream, REDIS_URL)
        Path(env["STOCKADE_CONFIG"]).write_text(Path(env["STOCKADE_CONFIG"]).read_text() + PRICE)
        run_cli(env, "deployments", "create", "--name", "mock", "--model", "mock-model", "--capacity", "1000")
        name = f"alerting-{uuid.uuid4().hex[:8]}"
        run_cli(env, "budgets", "create", name, "--amount", "1000", "--scope", "resource",
                "--threshold", "0.5", "--webhook", f"http://127.0.0.1:{port}/alerts")
        replicas = start_replicas(env, tmp_path, 2)
        try:
            for replica in replicas:
                replica.settle()
            results = asyncio.run(burst(replicas, "mock", 12))  # 3,600 spent: past 50% on both
        finally:
            for replica in replicas:
                stop(replica.process)  # each waits for its alerts under way
        assert not any(isinstance(r, Exception) for r in results)
        assert [alert["threshold"] for alert in received] == [0.5]  # type: ignore[index]
        audited = json.loads(run_cli(env, "--json", "audit", "list", "--action", "budgets.alert").stdout)
        assert len(audited) == 1 and audited[0]["status"] == 200
