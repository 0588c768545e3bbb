"""Replicas that share one rate limit through a real Redis, and what happens when Redis goes away.

The replicas run on one PostgreSQL schema in front of tests/mock_upstream.py, which counts what it
is sent: what the replicas together let through.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import openai
import pytest
import redis
from openai import AsyncAzureOpenAI

from conftest import (
    API_VERSION,
    Server,
    free_port,
    mock_upstream,
    postgres_schema_url,
    replica_env,
    run_cli,
    start_replicas,
    stop,
)

pytestmark = [pytest.mark.server, pytest.mark.redis, pytest.mark.postgres]

REDIS_URL = "redis://127.0.0.1:6379/0"
T = TypeVar("T")
WINDOW = 10
MAX_TOKENS = 300


async def burst(replicas: list[Server], deployment: str, calls: int) -> list[object]:
    """Send ``calls`` chat calls at once, spread over the replicas, through the openai SDK."""
    clients = [
        AsyncAzureOpenAI(azure_endpoint=r.url + "/", api_key=r.key, api_version=API_VERSION,
                         max_retries=0)
        for r in replicas
    ]

    async def one(index: int) -> object:
        try:
            return await clients[index % len(clients)].chat.completions.create(
                model=deployment, messages=[{"role": "user", "content": "Hello"}],
                max_tokens=MAX_TOKENS,
            )
        except openai.RateLimitError as exc:
            return exc

    try:
        return await asyncio.gather(*(one(i) for i in range(calls)))
    finally:
        for c in clients:
            await c.close()


@pytest.mark.parametrize("replicas", [1, 2, 4])
def test_replicas_share_one_window_limit_through_redis(
    replicas: int, tmp_path: Path
) -> None:
    with postgres_schema_url() as database_url, mock_upstream() as upstream:
        env = replica_env(tmp_path, database_url, upstream, REDIS_URL)
        # 6,000 TPM and 36 RPM: 1,000 tokens and 6 calls per 10-second window. Each call reserves
        # 309 tokens (9 for the prompt, 300 for the reply), so three fit a window.
        names = deployments(env, "burst")
        running = start_replicas(env, tmp_path, replicas)

        def attempt(name: str) -> list[object]:
            httpx.delete(f"{upstream}/tally")
            return asyncio.run(burst(running, name, 24))

        try:
            _, results = within_one_window(names, attempt)
        finally:
            for replica in running:
                stop(replica.process)
        admitted = [r for r in results if not isinstance(r, Exception)]
        refused = [r for r in results if isinstance(r, openai.RateLimitError)]
        assert len(admitted) == 3 and len(refused) == 21
        delivered = httpx.get(f"{upstream}/tally").json()
        assert len(delivered) == 3
        assert sum(tokens for _, tokens in delivered) <= 1000
        for error in refused:
            assert "token rate limit" in error.message
            assert 0 < int(error.response.headers["retry-after-ms"]) <= WINDOW * 1000


def deployments(env: dict[str, str], prefix: str, count: int = 5) -> list[str]:
    """Deployments of capacity 6 on the mock model, fresh counters for each attempt."""
    names = [f"{prefix}-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    for name in names:
        run_cli(env, "deployments", "create", "--name", name, "--model", "mock-model", "--capacity", "6")
    return names


def within_one_window(names: list[str], attempt: Callable[[str], T]) -> tuple[str, T]:
    """``attempt`` on each deployment in turn until one run falls within one window (windows align
    to Unix time; the replicas' clocks are real): a run that straddles two proves nothing."""
    for name in names:
        window = int(time.time() // WINDOW)
        result = attempt(name)
        if int(time.time() // WINDOW) == window:
            return name, result
    pytest.fail("every attempt straddled a window boundary")


class PrivateRedis:
    """A Redis of the test's own on a free port, which the test may stop and start again."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is needed (Debian package redis-server)")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port).ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def limiter_state(server: Server) -> str:
    metrics = httpx.get(f"{server.url}/metrics", headers={"api-key": server.key}).text
    return next(
        row.split('"')[1] for row in metrics.splitlines()
        if row.startswith("stockade_rate_limiter{") and row.endswith(" 1.0")
    )


def test_without_redis_each_replica_keeps_its_share_and_recovers(
    tmp_path: Path, private_redis: PrivateRedis
) -> None:
    with postgres_schema_url() as database_url, mock_upstream() as upstream:
        env = replica_env(tmp_path, database_url, upstream, private_redis.url,
                          STOCKADE_LIMITS__REPLICAS="2")
        # 36 RPM: 6 calls per window shared, 3 per window for one replica on its own.
        names = deployments(env, "outage")
        (replica,) = start_replicas(env, tmp_path, 1)
        sdk = openai.AzureOpenAI(azure_endpoint=replica.url + "/", api_key=replica.key,
                                 api_version=API_VERSION, max_retries=0)

        def hello(name: str) -> None:
            sdk.chat.completions.create(model=name, messages=[{"role": "user", "content": "Hi"}], max_tokens=1)

        def five_calls(name: str) -> list[str]:
            outcomes = []
            for _ in range(5):
                try:
                    hello(name)
                    outcomes.append("ok")
                except openai.RateLimitError:
                    outcomes.append("429")
            return outcomes

        try:
            hello(names[0])
            assert limiter_state(replica) == "redis"
            private_redis.stop()
            name, outcomes = within_one_window(names[1:], five_calls)
            assert outcomes == ["ok", "ok", "ok", "429", "429"]
            assert limiter_state(replica) == "fallback"
            private_redis.start()
            # The limiter tries Redis again a second after a failure, on a call that needs it.
            deadline = time.monotonic() + 20
            while limiter_state(replica) != "redis":
                assert time.monotonic() < deadline, "the limiter never went back to Redis"
                with contextlib.suppress(openai.RateLimitError):
                    hello(name)
                time.sleep(0.1)
            hello(name)
        finally:
            stop(replica.process)
        log = (tmp_path / "replica-0.log").read_text()
        assert "Redis is unreachable" in log and "Redis is reachable again" in log
