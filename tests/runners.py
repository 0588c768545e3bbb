"""A model runner for worker-pool tests: no model, just observable behaviour."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator


class Counter:
    def __init__(self) -> None:
        self.pid = os.getpid()

    def process(self, _payload: object) -> int:
        """Which process serves the pool."""
        return self.pid

    def count(self, delay: float) -> Iterator[int]:
        """Counts until told to stop, like a model that never reaches max_tokens."""
        n = 0
        while True:
            yield n
            n += 1
            time.sleep(delay)
