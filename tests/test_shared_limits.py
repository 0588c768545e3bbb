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
from collections.abc import Iterator
from pathlib import Path

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
    start_of_next_window,
    start_replicas,
    stop,
)

pytestmark = [pytest.mark.server, pytest.mark.redis, pytest.mark.postgres]

REDIS_URL = "redis://127.0.0.1:6379/0"
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
        name = f"burst-{uuid.uuid4().hex[:8]}"
        # 6,000 TPM and 36 RPM: 1,000 tokens and 6 calls per 10-second window. Each call reserves
        # 309 tokens (9 for the prompt, 300 for the reply), so three fit a window.
        run_cli(env, "deployments", "create", "--name", name, "--model", "mock-model", "--capacity", "6")
        running = start_replicas(env, tmp_path, replicas)
        try:
            httpx.delete(f"{upstream}/tally")
            start_of_next_window(WINDOW, margin=0.2)
            started = time.time()
            results = asyncio.run(burst(running, name, 24))
            assert time.time() - started < WINDOW - 1, "the burst must fit in one window"
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
        name = f"outage-{uuid.uuid4().hex[:8]}"
        # 36 RPM: 6 calls per window shared, 3 per window for one replica on its own.
        run_cli(env, "deployments", "create", "--name", name, "--model", "mock-model", "--capacity", "6")
        (replica,) = start_replicas(env, tmp_path, 1)
        sdk = openai.AzureOpenAI(azure_endpoint=replica.url + "/", api_key=replica.key,
                                 api_version=API_VERSION, max_retries=0)

        def hello() -> None:
            sdk.chat.completions.create(model=name, messages=[{"role": "user", "content": "Hi"}], max_tokens=1)

        try:
            hello()
            assert limiter_state(replica) == "redis"
            private_redis.stop()
            start_of_next_window(WINDOW, margin=0.2)
            outcomes = []
            for _ in range(5):
                try:
                    hello()
                    outcomes.append("ok")
                except openai.RateLimitError:
                    outcomes.append("429")
            assert outcomes == ["ok", "ok", "ok", "429", "429"]
            assert limiter_state(replica) == "fallback"
            private_redis.start()
            # The limiter tries Redis again a second after a failure, on a call that needs it.
            deadline = time.monotonic() + 20
            while limiter_state(replica) != "redis":
                assert time.monotonic() < deadline, "the limiter never went back to Redis"
                with contextlib.suppress(openai.RateLimitError):
                    hello()
                time.sleep(0.1)
            hello()
        finally:
            stop(replica.process)
        log = (tmp_path / "replica-0.log").read_text()
        assert "Redis is unreachable" in log and "Redis is reachable again" in log
