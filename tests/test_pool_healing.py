"""A model's worker pool heals: workers killed while idle, mid-stream or while loading are reaped
and replaced, callers never get a 500 or a hang, and the pool's state says where it stands.

The pools run tests/runners.py in real worker processes, killed with real signals; the
``Steered`` runner's loading is made to fail or hang through a control file.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from stockade.backends.base import PoolSpec
from stockade.backends.worker import ModelWorkers
from stockade.errors import BackendUnavailable

DEADLINE = 60  # seconds for a worker process to start on a busy two-core machine


def reaped(pid: int) -> bool:
    """Whether a child of this process has been waited for, so that no zombie is left. (On a
    zombie this reaps it, but answers False all the same.)"""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not await condition():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.02)


class Control:
    """The Steered runner's control file: what its next load does, and who loaded last."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def set(self, word: str) -> None:
        self.path.write_text(word)

    def loader(self) -> int:
        return int(Path(f"{self.path}.pid").read_text())

    async def next_loader(self, after: int) -> int:
        """The process id of a load that began after process ``after``'s."""
        async def began() -> bool:
            return self.loader() != after
        await until(began, "a replacement began loading")
        return self.loader()


@asynccontextmanager
async def steered_pool(tmp_path: Path, *, processes: int = 1, wait_seconds: float = DEADLINE,
                       word: str = "") -> AsyncIterator[tuple[ModelWorkers, Control]]:
    control = Control(tmp_path / "control")
    control.set(word)
    pool = ModelWorkers(PoolSpec(
        name="steered", runner="runners:Steered", options={"control": str(control.path)},
        processes=processes, wait_seconds=wait_seconds,
    ))
    await pool.start()
    try:
        yield pool, control
    finally:
        control.set("")  # a loader left hanging goes on, and the pool closes it
        await pool.close()


async def state_is(pool: ModelWorkers, name: str) -> bool:
    return (await pool.state())["state"] == name


def test_a_worker_killed_while_idle_is_replaced_before_the_next_call(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with steered_pool(tmp_path) as (pool, _):
            killed = await pool.call("process", None)
            os.kill(killed, signal.SIGKILL)
            replacement = await pool.call("process", None)
            assert replacement != killed
            assert reaped(killed)

    asyncio.run(scenario())


def test_calls_go_on_when_one_of_two_idle_workers_is_killed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with steered_pool(tmp_path, processes=2) as (pool, _):
            first = await pool.call("process", None)
            os.kill(first, signal.SIGKILL)
            served = [await pool.call("process", None) for _ in range(4)]
            assert first not in served
            await until(lambda: state_is(pool, "ready"), "the pool was ready")
            assert (await pool.state())["workers"] in (1, 2)

    asyncio.run(scenario())


def test_a_worker_killed_mid_stream_ends_that_stream_with_a_503(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with steered_pool(tmp_path) as (pool, _):
            stream = pool.stream("count", 0.01)
            assert [await anext(stream), await anext(stream)] == [0, 1]
            killed = int(Path(f"{tmp_path / 'control'}.pid").read_text())
            os.kill(killed, signal.SIGKILL)
            with pytest.raises(BackendUnavailable, match="exited while it served") as failed:
                while True:
                    await anext(stream)
            assert failed.value.retry_after_ms is not None
            assert await pool.call("process", None) != killed
            assert reaped(killed)

    asyncio.run(scenario())


def test_a_call_waits_for_a_loading_worker_only_up_to_wait_seconds(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with steered_pool(tmp_path, wait_seconds=0.2) as (pool, control):
            killed = await pool.call("process", None)
            control.set("hang")
            os.kill(killed, signal.SIGKILL)
            await control.next_loader(killed)
            assert await state_is(pool, "starting")
            with pytest.raises(BackendUnavailable, match="no running worker yet") as refused:
                await pool.call("process", None)
            assert refused.value.status == 503 and refused.value.retry_after_ms == 1000
            assert reaped(killed)  # before its replacement even loaded

    asyncio.run(scenario())


def test_a_replacement_killed_while_loading_is_tried_again(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with steered_pool(tmp_path) as (pool, control):
            first = await pool.call("process", None)
            control.set("hang")
            os.kill(first, signal.SIGKILL)
            loading = await control.next_loader(first)
            os.kill(loading, signal.SIGKILL)
            await until(lambda: state_is(pool, "failed"), "the pool reported the failure")
            # Every load has failed: callers are told at once, with when to come back.
            with pytest.raises(BackendUnavailable, match="exited while loading") as refused:
                await pool.call("process", None)
            assert refused.value.retry_after_ms is not None
            retry = await control.next_loader(loading)  # the backoff's next attempt
            control.set("")
            await until(lambda: state_is(pool, "ready"), "the retried load succeeded")
            assert await pool.call("process", None) == retry
            assert reaped(first) and reaped(loading)

    asyncio.run(scenario())


def test_a_call_waiting_for_a_loading_worker_hears_at_once_that_its_load_failed(
        tmp_path: Path) -> None:
    async def scenario() -> None:
        async with steered_pool(tmp_path) as (pool, control):  # wait_seconds: a minute
            first = await pool.call("process", None)
            control.set("hang")
            os.kill(first, signal.SIGKILL)
            loading = await control.next_loader(first)
            waiting = asyncio.ensure_future(pool.call("process", None))
            await asyncio.sleep(0.1)  # let it start waiting (it would wait just as well later)
            assert not waiting.done()
            os.kill(loading, signal.SIGKILL)
            # Woken by the failure, well before wait_seconds: a minute would mean it was not.
            with pytest.raises(BackendUnavailable, match="exited while loading"):
                await asyncio.wait_for(waiting, DEADLINE / 2)

    asyncio.run(scenario())


def test_a_pool_whose_workers_cannot_load_says_why_and_heals_once_they_can(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with steered_pool(tmp_path, word="fail") as (pool, control):
            assert await pool.state() == {"state": "failed", "workers": 0, "processes": 1, "busy": 0,
                                          "waiting": 0}
            with pytest.raises(BackendUnavailable, match="the test made loading fail"):
                await pool.call("process", None)
            control.set("")
            await until(lambda: state_is(pool, "ready"), "the pool healed")
            assert await pool.call("process", None) == control.loader()

    asyncio.run(scenario())


def test_closing_a_pool_reaps_its_workers_and_one_still_loading(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with steered_pool(tmp_path, processes=2) as (pool, control):
            running = {await pool.call("process", None) for _ in range(4)}
            busy = pool.stream("count", 0.01)
            await anext(busy)  # one worker busy, so the next call goes to the other
            idle = await pool.call("process", None)
            control.set("hang")
            os.kill(idle, signal.SIGKILL)
            loading = await control.next_loader(max(running))
            await pool.close()
            await busy.aclose()
        assert all(reaped(pid) for pid in running | {idle, loading})

    asyncio.run(scenario())


def test_a_pool_reports_its_busy_workers_and_the_callers_waiting_for_one(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with steered_pool(tmp_path) as (pool, _):
            assert (await pool.state())["busy"] == 0
            counting = pool.stream("count", 0.01)
            await anext(counting)
            assert (await pool.state())["busy"] == 1
            queued = asyncio.ensure_future(pool.call("process", None))

            async def one_waiting() -> bool:
                return (await pool.state())["waiting"] == 1

            await until(one_waiting, "the second caller waited for the busy worker")
            await counting.aclose()  # type: ignore[attr-defined]
            await queued
            assert {k: v for k, v in (await pool.state()).items() if k in ("busy", "waiting")} == {
                "busy": 0, "waiting": 0,
            }

    asyncio.run(scenario())
