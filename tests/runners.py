"""A model runner for worker-pool tests: no model, just observable behaviour."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

from stockade.backends.base import Delta, Usage


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


class Steered(Counter):
    """A runner whose loading a test steers through a file, so that it fails or hangs
    deterministically: absent or empty, it loads; "fail", its constructor raises; "hang", it
    waits until the word changes (a test kills it meanwhile, or lets it go on). Each load
    writes its process id to the file's ``.pid`` sibling first, for the test to find."""

    def __init__(self, control: str) -> None:
        # Whole or not at all, for a test that reads it meanwhile (write_text truncates first).
        written = Path(f"{control}.pid.{os.getpid()}")
        written.write_text(str(os.getpid()))
        written.replace(control + ".pid")
        while _word(control) == "hang":
            time.sleep(0.02)
        if _word(control) == "fail":
            raise RuntimeError("the test made loading fail")
        super().__init__()

    def generate(self, _payload: object) -> Iterator[Delta | Usage]:
        """A chat model's stream, for the API: a prompt count, one word, the end."""
        yield Usage(1, 0, final=False)
        yield Delta(0, text="healed")
        yield Delta(0, finish_reason="stop")
        yield Usage(1, 1)


def _word(control: str) -> str:
    try:
        return Path(control).read_text().strip()
    except FileNotFoundError:
        return ""
