"""Batch lines spread over each rate-limit window, not sent at its start.

The limiter admits a window's share as fast as it is asked for it. Lines sent as fast as they
are admitted arrive in a burst at the start of every window, which takes the CPU (and the
upstream) for a while, and the interactive calls that meet the burst wait. So after each line,
the deployment's next lines are spaced to spread what the window still allows them over what is
left of it. A line the limiter refuses all the same waits out its retry-after, as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from stockade.quotas import Remaining


class Pacer:
    def __init__(
        self,
        window_seconds: int,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.window_seconds = window_seconds
        self.clock = clock
        self.sleep = sleep
        self._spacing: dict[str, float] = {}  # deployment: seconds between its lines' starts
        self._last: dict[str, float] = {}  # deployment: when its last line started

    async def wait(self, deployment: str) -> None:
        """Until the deployment's next line may start: spaced from the one before."""
        now = self.clock()
        last = self._last.get(deployment)
        start = now if last is None else max(now, last + self._spacing.get(deployment, 0.0))
        self._last[deployment] = start
        if start > now:
            await self.sleep(start - now)

    def admitted(self, deployment: str, remaining: Remaining, tokens: int) -> None:
        """A line of ``tokens`` tokens ran, admitted with ``remaining`` left in the window."""
        left = self.window_seconds - self.clock() % self.window_seconds
        lines = [count for count in (
            remaining.requests,
            None if remaining.tokens is None or tokens <= 0 else remaining.tokens // tokens,
        ) if count is not None]
        self._spacing[deployment] = left / max(1, min(lines)) if lines else 0.0
