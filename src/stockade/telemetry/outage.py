"""Logging a background task's failures once per outage, not once per attempt.

The store's poller and the usage writer retry every fraction of a second; while the database is
down, a traceback per attempt buried everything else in the log. An outage is logged when it
begins (with the first error's traceback) and when it ends (with how many attempts failed, over
how long).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any


class Outage:
    def __init__(
        self, logger: logging.Logger, what: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._log = logger
        self.what = what
        self._clock = clock
        self.failures = 0
        self._since = 0.0

    def failed(self) -> None:
        """Call from an ``except`` block: the first failure of an outage is logged with it."""
        self.failures += 1
        if self.failures == 1:
            self._since = self._clock()
            self._log.exception("%s failed; retrying, and logging again only once it works", self.what)

    def succeeded(self, note: str = "") -> None:
        if self.failures:
            self._log.warning(
                "%s works again, after %d failed attempts over %.1f s%s",
                self.what, self.failures, self._clock() - self._since, note,
            )
            self.failures = 0


async def every(seconds: float, work: Callable[[], Awaitable[Any]], outage: Outage) -> None:
    """Run ``work`` every ``seconds``, for ever, its failures logged once per ``outage``."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await work()
        except Exception:
            outage.failed()
        else:
            outage.succeeded()
