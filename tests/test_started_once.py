"""Models and worker pools start once, however many callers ask at the same time."""

from __future__ import annotations

import asyncio

import pytest

from stockade.backends.started import StartedOnce


class Thing:
    closed = False

    async def close(self) -> None:
        self.closed = True


def test_concurrent_first_callers_share_one_start() -> None:
    starts = 0

    async def start() -> Thing:
        nonlocal starts
        starts += 1
        await asyncio.sleep(0)
        return Thing()

    async def scenario() -> None:
        once: StartedOnce[str, Thing] = StartedOnce()
        things = await asyncio.gather(*(once.get("model", start) for _ in range(5)))
        assert starts == 1 and len({id(thing) for thing in things}) == 1
        await once.close()
        assert things[0].closed

    asyncio.run(scenario())


def test_a_start_that_failed_is_tried_again_by_the_next_caller() -> None:
    attempts = []

    async def start() -> Thing:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("weights missing")
        return Thing()

    async def scenario() -> None:
        once: StartedOnce[str, Thing] = StartedOnce()
        with pytest.raises(RuntimeError):
            await once.get("model", start)
        assert isinstance(await once.get("model", start), Thing)
        assert len(attempts) == 2

    asyncio.run(scenario())


def test_a_discarded_key_is_closed_and_started_afresh_by_the_next_caller() -> None:
    async def scenario() -> None:
        once: StartedOnce[str, Thing] = StartedOnce()
        first = await once.get("model", _thing)
        await once.discard("model")
        assert first.closed and once.status("model") == ("absent", None)
        assert await once.get("model", _thing) is not first

    asyncio.run(scenario())


async def _thing() -> Thing:
    return Thing()
