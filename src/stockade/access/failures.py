"""Failed authentications per source address, so that wrong secrets cost their sender time.

A source that fails ``limit`` times within ``window_seconds`` gets 429 for each further wrong
secret until its oldest failure in the window ages out. A right secret is served whatever its
source did (``Access.failed``): behind a NAT or a proxy many users share an address, and with
128-bit random secrets a guesser gains nothing by being answered. Counts are kept in each
process's memory.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_SOURCES = 100_000  # sources tracked at once; the least recently failing are forgotten first


class FailedAttempts:
    def __init__(
        self, limit: int, window_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window_seconds
        self._clock = clock
        self._failures: OrderedDict[object, deque[float]] = OrderedDict()

    def retry_after(self, source: object) -> float | None:
        """Seconds until ``source`` may try again, or None if it may now."""
        failures = self._failures.get(source)
        if failures is None:
            return None
        now = self._clock()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[source]
            return None
        if len(failures) < self.limit:
            return None
        return failures[0] + self.window - now

    def record(self, source: object) -> None:
        failures = self._failures.setdefault(source, deque(maxlen=self.limit))
        failures.append(self._clock())
        self._failures.move_to_end(source)
        if len(self._failures) > MAX_SOURCES:
            self._failures.popitem(last=False)
