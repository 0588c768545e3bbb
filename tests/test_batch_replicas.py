"""Batch jobs on real servers in front of tests/mock_upstream.py, which records the prompt of
every call it is sent: a server killed with SIGKILL mid-batch resumes after a restart with one
output line per input line; a replica of several HTTP workers runs its lines in a batch process
of lower priority, replaced when it dies; and two replicas on one PostgreSQL store share a batch
without sending any line upstream twice.

The batches are created by this process on the servers' store (the HTTP routes are tested
elsewhere); the servers' runners do the rest.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import (
    Server,
    children,
    environment,
    free_port,
    mock_upstream,
    postgres_schema_url,
    replica_env,
    run_cli,
    start_replicas,
    start_server,
    stop,
)
from stockade.batch.jobs import batch_object
from stockade.config import Settings
from stockade.core import Resource

pytestmark = pytest.mark.server

DEPLOYMENT = "batch-mock"
RUNNER = {
    "STOCKADE_BATCH__POLL_SECONDS": "0.1",
    "STOCKADE_BATCH__LEASE_SECONDS": "2",
    "STOCKADE_BATCH__CONCURRENCY": "2",
}


def prompt(custom_id: str) -> str:
    return f"Request {custom_id}"


def input_file(count: int) -> bytes:
    lines = [
        {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": DEPLOYMENT, "messages": [{"role": "user", "content": prompt(f"r{i}")}],
                  "max_tokens": 5}}
        for i in range(count)
    ]
    return b"".join(json.dumps(item).encode() + b"\n" for item in lines)


class Submitter:
    """This process's own resource on the servers' store: it creates the batch and reads its
    progress and files."""

    def __init__(self, env: dict[str, str]) -> None:
        with environment(env):
            self.resource = Resource(Settings())
        self.runner = asyncio.Runner()
        self.runner.run(self.resource.open(background=False))

    def close(self) -> None:
        self.runner.run(self.resource.close())
        self.runner.close()

    def submit(self, key: str, data: bytes) -> str:
        async def chunks() -> AsyncIterator[bytes]:
            yield data

        async def create() -> str:
            principal = self.resource.access.keys.authenticate(key)
            assert principal is not None
            file = await self.resource.files.upload(principal.id, "batch", "input.jsonl", chunks(), None)
            view = await self.resource.batches.create(
                principal, input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
            return view.record.id

        return self.runner.run(create())

    def batch(self, batch_id: str) -> dict[str, Any]:
        return batch_object(self.runner.run(self.resource.batches.get(batch_id)))

    def output(self, file_id: str) -> list[dict[str, Any]]:
        async def read() -> bytes:
            return b"".join([chunk async for chunk in await self.resource.files.content(file_id)])

        return [json.loads(text) for text in self.runner.run(read()).splitlines()]

    def wait_for(self, batch_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not done(shown := self.batch(batch_id)):
            assert time.monotonic() < deadline, f"the batch got no further than {shown}"
            time.sleep(0.1)
        return shown


def deploy(env: dict[str, str]) -> None:
    run_cli(env, "deployments", "create", "--name", DEPLOYMENT, "--model", "mock-model", "--capacity", "1000")


def key1(env: dict[str, str]) -> str:
    return json.loads(run_cli(env, "--json", "keys", "regenerate", "key1").stdout)["key"]


def test_a_server_killed_mid_batch_resumes_after_a_restart_with_one_output_line_per_input_line(
    tmp_path: Path,
) -> None:
    with mock_upstream(delay=0.3) as upstream:
        env = replica_env(tmp_path, f"sqlite:///{tmp_path / 'stockade.db'}", upstream, None, **RUNNER)
        deploy(env)
        key = key1(env)
        first = start_server(env, tmp_path / "first.log", free_port())
        store = Submitter(env)
        try:
            batch_id = store.submit(key, input_file(12))
            store.wait_for(batch_id, lambda b: b["request_counts"]["completed"] >= 3)
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=30)
            killed_at = store.batch(batch_id)
            assert killed_at["status"] == "in_progress"
            assert killed_at["request_counts"]["completed"] < 12
            second = start_server(env, tmp_path / "second.log", free_port())
            try:
                done = store.wait_for(batch_id, lambda b: b["status"] == "completed")
            finally:
                stop(second)
            output = store.output(done["output_file_id"])
        finally:
            store.close()
    assert done["request_counts"] == {"total": 12, "completed": 12, "failed": 0}
    assert done["error_file_id"] is None
    assert sorted(item["custom_id"] for item in output) == sorted(f"r{i}" for i in range(12))


def niceness(pid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, pid)


def lowered(server: subprocess.Popen[bytes]) -> list[int]:
    """The server's child processes that run at a lower priority than it does."""
    return [child for child in children(server.pid) if niceness(child) > niceness(server.pid)]


def batch_process(server: subprocess.Popen[bytes], timeout: float = 60) -> int:
    """The server's one lower-priority child, once it has started: it lowers its priority as it
    starts, which may be after the HTTP workers answer."""
    deadline = time.monotonic() + timeout
    while not (found := lowered(server)):
        assert time.monotonic() < deadline, "no batch process started"
        time.sleep(0.1)
    assert len(found) == 1, f"more than one batch process: {found}"
    return found[0]


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[dict[str, str], str, subprocess.Popen[bytes]]]:
    """A replica of two HTTP workers, its batch process and its key, in front of a slow upstream."""
    with mock_upstream(delay=0.3) as upstream:
        env = replica_env(tmp_path, f"sqlite:///{tmp_path / 'stockade.db'}", upstream, None,
                          **RUNNER, STOCKADE_WORKERS="2")
        deploy(env)
        key = key1(env)
        server = start_server(env, tmp_path / "server.log", free_port())
        try:
            yield env, key, server
        finally:
            stop(server)


def test_a_replica_of_several_workers_runs_batch_lines_in_one_process_of_lower_priority(
    two_workers: tuple[dict[str, str], str, subprocess.Popen[bytes]],
) -> None:
    env, key, server = two_workers
    batch_process(server)
    store = Submitter(env)
    try:
        batch_id = store.submit(key, input_file(4))
        done = store.wait_for(batch_id, lambda b: b["status"] == "completed")
    finally:
        store.close()
    assert done["request_counts"] == {"total": 4, "completed": 4, "failed": 0}


def test_a_batch_process_that_dies_is_replaced_and_its_batch_ends_with_one_line_per_input_line(
    two_workers: tuple[dict[str, str], str, subprocess.Popen[bytes]],
) -> None:
    env, key, server = two_workers
    store = Submitter(env)
    try:
        batch_id = store.submit(key, input_file(12))
        store.wait_for(batch_id, lambda b: b["request_counts"]["completed"] >= 3)
        batches = batch_process(server)
        os.kill(batches, signal.SIGKILL)
        done = store.wait_for(batch_id, lambda b: b["status"] == "completed")
        output = store.output(done["output_file_id"])
    finally:
        store.close()
    assert batch_process(server) != batches
    assert sorted(item["custom_id"] for item in output) == sorted(f"r{i}" for i in range(12))


def ended(pid: int, timeout: float = 30) -> bool:
    """Whether the process ends (exits, whether reaped or not) within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if "zombie" in Path(f"/proc/{pid}/status").read_text():
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.1)
    return False


def test_stopping_the_replica_stops_its_batch_process(
    two_workers: tuple[dict[str, str], str, subprocess.Popen[bytes]],
) -> None:
    _, _, server = two_workers
    batches = batch_process(server)
    stop(server)
    assert server.returncode == 0 and ended(batches)


def test_the_http_workers_and_batch_process_of_a_killed_replica_end(
    two_workers: tuple[dict[str, str], str, subprocess.Popen[bytes]],
) -> None:
    _, _, server = two_workers
    batch_process(server)
    processes = children(server.pid)
    server.kill()
    assert [pid for pid in processes if not ended(pid)] == []


@pytest.mark.postgres
def test_two_replicas_on_postgresql_share_a_batch_without_running_a_line_twice(tmp_path: Path) -> None:
    count = 40
    with postgres_schema_url() as database_url, mock_upstream(delay=0.05) as upstream:
        env = replica_env(tmp_path, database_url, upstream, None, **RUNNER)
        deploy(env)
        replicas: list[Server] = start_replicas(env, tmp_path, 2)
        store = Submitter(env)
        try:
            batch_id = store.submit(replicas[0].key, input_file(count))
            done = store.wait_for(batch_id, lambda b: b["status"] == "completed")
            output = store.output(done["output_file_id"])
        finally:
            store.close()
            for replica in replicas:
                stop(replica.process)
        sent = collections.Counter(httpx.get(f"{upstream}/prompts").json())
    assert sorted(item["custom_id"] for item in output) == sorted(f"r{i}" for i in range(count))
    assert sent == {prompt(f"r{i}"): 1 for i in range(count)}
