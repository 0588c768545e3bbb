"""Batch lines are spread over what is left of each rate-limit window (on an injected clock)."""

from __future__ import annotations

import asyncio

from stockade.batch.pacing import Pacer
from stockade.quotas import Remaining

WINDOW = 10


class Time:
    """A clock that only sleeping moves."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def paced(now: float) -> tuple[Pacer, Time]:
    time = Time(now)
    return Pacer(WINDOW, time, time.sleep), time


def starts(pacer: Pacer, time: Time, lines: int, deployment: str = "d") -> list[float]:
    """When each of ``lines`` lines, one after another, may start."""

    async def run() -> list[float]:
        begun = []
        for _ in range(lines):
            await pacer.wait(deployment)
            begun.append(time.now)
        return begun

    return asyncio.run(run())


def test_lines_start_at_once_until_one_has_run() -> None:
    pacer, time = paced(100.0)
    assert starts(pacer, time, 3) == [100.0, 100.0, 100.0]


def test_lines_are_spread_over_what_is_left_of_the_window() -> None:
    pacer, time = paced(104.0)  # 6 seconds of the window left
    pacer.admitted("d", Remaining(tokens=None, requests=3), tokens=10)
    assert starts(pacer, time, 3) == [104.0, 106.0, 108.0]


def test_the_scarcer_of_tokens_and_requests_sets_the_spacing() -> None:
    pacer, time = paced(100.0)
    pacer.admitted("d", Remaining(tokens=50, requests=100), tokens=10)  # tokens for 5 lines in 10 s
    assert starts(pacer, time, 3) == [100.0, 102.0, 104.0]


def test_a_full_window_holds_the_next_line_until_it_ends() -> None:
    pacer, time = paced(107.5)
    pacer.admitted("d", Remaining(tokens=0, requests=0), tokens=10)
    assert starts(pacer, time, 2) == [107.5, 110.0]


def test_each_deployment_is_paced_on_its_own() -> None:
    pacer, time = paced(100.0)
    pacer.admitted("d", Remaining(tokens=None, requests=1), tokens=10)
    assert starts(pacer, time, 2, deployment="other") == [100.0, 100.0]
