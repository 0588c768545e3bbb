"""Failed authentications per source address, so that secrets cannot be guessed at speed.

A source that fails ``limit`` times within ``window_seconds`` is refused (429) until its oldest
failure in the window ages out, whatever it presents: answering a correct guess differently from
a wrong one would let the guessing go on. Counts are kept in each replica's memory.
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
