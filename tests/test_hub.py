"""The replica's hub, in process: what several HTTP workers share through it.

Each test runs a real hub on a Unix socket and connects to it as separate workers would, each
with a client of its own. Pools run tests/runners.py in real worker processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from stockade.backends.base import PoolSpec
from stockade.errors import BackendUnavailable, TooManyRequests
from stockade.quotas import Bucket, Limit
from stockade.replica.client import HubClient, HubLimiter, RemotePool
from stockade.replica.hub import Hub

T0 = 1_700_000_040_000  # the start of a minute, and of a 10-second window
COUNTER = PoolSpec(name="counter", runner="runners:Counter", options={}, processes=1)


class Clock:
    now = T0

    def __call__(self) -> int:
        return self.now


@contextlib.asynccontextmanager
async def running_hub(clock: Clock | None = None) -> AsyncIterator[Path]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "hub.sock"
        hub = Hub(path, 10, clock=clock)
        stopping = asyncio.Event()
        served = asyncio.ensure_future(hub.serve(stopping, threading.Event()))
        while not path.exists():
            await asyncio.sleep(0.01)
        try:
            yield path
        finally:
            stopping.set()
            await served


def deployment(tokens_per_minute: int) -> Bucket:
    return Bucket("d:test", Limit(tokens_per_minute, None), "deployment 'test'")


def test_a_reservation_by_one_worker_counts_for_every_other() -> None:
    async def scenario() -> None:
        async with running_hub(Clock()) as path:
            workers = [HubLimiter(HubClient(path), 10) for _ in range(3)]
            bucket = deployment(600)  # 100 tokens per 10-second window
            for worker in workers:
                await worker.reserve([bucket], 30, "ChatCompletions_Create")
            with pytest.raises(TooManyRequests) as refused:
                await workers[0].reserve([bucket], 30, "ChatCompletions_Create")
            assert refused.value.retry_after_ms == 10_000
            for worker in workers:
                await worker.client.close()

    asyncio.run(scenario())


def test_tokens_one_worker_settles_back_are_free_for_another() -> None:
    async def scenario() -> None:
        async with running_hub(Clock()) as path:
            first, second = HubLimiter(HubClient(path), 10), HubLimiter(HubClient(path), 10)
            bucket = deployment(600)
            held = await first.reserve([bucket], 90, "ChatCompletions_Create")
            await first.settle(held, 10)  # the call used 10 of its 90
            admitted = await second.reserve([bucket], 80, "ChatCompletions_Create")
            assert admitted.remaining.tokens == 100 - 10 - 80
            await first.client.close()
            await second.client.close()

    asyncio.run(scenario())


def test_workers_starting_the_same_model_share_one_process() -> None:
    async def scenario() -> None:
        async with running_hub() as path:
            pools = [RemotePool(HubClient(path), COUNTER) for _ in range(2)]
            await asyncio.gather(*(pool.start() for pool in pools))
            processes = {await pool.call("process", None) for pool in pools}
            assert len(processes) == 1
            for pool in pools:
                await pool.client.close()

    asyncio.run(scenario())


def test_a_stream_its_worker_abandons_frees_the_model() -> None:
    async def scenario() -> None:
        async with running_hub() as path:
            pool = RemotePool(HubClient(path), COUNTER)
            await pool.start()
            stream = pool.stream("count", 0.01)
            assert [await anext(stream), await anext(stream)] == [0, 1]
            await stream.aclose()  # as when the HTTP client disconnects
            # The pool has one process: this answers only once the abandoned stream has stopped.
            assert await asyncio.wait_for(pool.call("process", None), 10)
            await pool.client.close()

    asyncio.run(scenario())


def test_a_pool_started_again_from_another_spec_replaces_the_one_under_its_name(tmp_path: Path) -> None:
    """A model file removed and added again from another file: the hub must not go on serving
    the old one."""
    first, second = (PoolSpec(name="steered", runner="runners:Steered",
                              options={"control": str(tmp_path / name)}) for name in ("a", "b"))

    async def scenario() -> None:
        async with running_hub() as path:
            pool = RemotePool(HubClient(path), first)
            await pool.start()
            before = await pool.call("process", None)
            again = RemotePool(HubClient(path), second)
            await again.start()
            assert await again.call("process", None) != before
            assert (tmp_path / "b.pid").exists()
            await pool.client.close()
            await again.client.close()

    asyncio.run(scenario())


def test_a_worker_whose_hub_is_gone_says_so() -> None:
    async def scenario() -> None:
        client = HubClient(Path(tempfile.gettempdir()) / "no-such-hub.sock")
        with pytest.raises(BackendUnavailable, match="lost its replica's hub"):
            await HubLimiter(client, 10).reserve([deployment(600)], 1, "ChatCompletions_Create")

    asyncio.run(scenario())


def test_every_worker_hears_the_hub_pools_state() -> None:
    async def scenario() -> None:
        async with running_hub() as path:
            first, second = (RemotePool(HubClient(path), COUNTER) for _ in range(2))
            # Not started by anyone yet: no worker runs, and one would be loaded on first use.
            assert await first.state() == {"state": "starting", "workers": 0, "processes": 0,
                                           "busy": 0, "waiting": 0}
            await first.start()
            ready = {"state": "ready", "workers": 1, "processes": 1, "busy": 0, "waiting": 0}
            assert await first.state() == ready
            assert await second.state() == ready  # the replica's one pool, whoever asks
            await first.client.close()
            await second.client.close()

    asyncio.run(scenario())
