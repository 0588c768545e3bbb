"""The arithmetic of Azure-style rate limits, with no clock and no storage of its own.

A limit is so many tokens and requests per minute. Azure enforces it over short windows as well as
the minute, so bursts are refused before the minute's total is spent: with 10-second windows a
deployment of 60,000 TPM admits at most 10,000 tokens in any one window. Both kinds of window are
aligned to Unix time, so every replica agrees on when one ends.

A request is admitted when its reserved tokens fit what is left of both windows. A window in which
nothing has been admitted yet takes any one request, however large (one larger than a whole
minute's limit is refused with a 400 before it gets here: core/inference.py); that is the only way
past a limit, so the total admitted in a window exceeds the limit by at most one request's
reservation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

MINUTE_MS = 60_000


@dataclass(frozen=True, slots=True)
class Limit:
    """Per-minute limits; None means that dimension is not limited."""

    tokens_per_minute: int | None
    requests_per_minute: int | None

    @classmethod
    def for_capacity(cls, capacity: int) -> Limit:
        """Azure's rule for a deployment: capacity 1 = 1,000 TPM, and 6 RPM per 1,000 TPM."""
        return cls(capacity * 1000, capacity * 6)


@dataclass(frozen=True, slots=True)
class Bucket:
    """One rate-limited scope, e.g. a deployment or an application key, and its limit."""

    scope: str
    limit: Limit
    label: str  # how errors name it: "deployment 'gpt-4o'", "API key 'billing'"
    remedy: str = ""  # how to raise the limit, for the 429 message


@dataclass(slots=True)
class Counters:
    """What a bucket has admitted in the current minute and the current short window."""

    minute: int = -1
    minute_tokens: int = 0
    minute_requests: int = 0
    window: int = -1
    window_tokens: int = 0
    window_requests: int = 0

    def roll(self, clock: Clock) -> None:
        """Start new windows if time has moved past the recorded ones."""
        if self.minute != clock.minute:
            self.minute, self.minute_tokens, self.minute_requests = clock.minute, 0, 0
        if self.window != clock.window:
            self.window, self.window_tokens, self.window_requests = clock.window, 0, 0

    def charge(self, tokens: int) -> None:
        self.minute_tokens += tokens
        self.minute_requests += 1
        self.window_tokens += tokens
        self.window_requests += 1

    def adjust(self, reserved_minute: int, reserved_window: int, delta: int, clock: Clock) -> None:
        """Apply ``delta`` (actual minus reserved tokens) after a call completes.

        A window that is still current gets the difference either way: unused tokens go back, an
        overrun is added. Once the window of the reservation has ended nothing is returned, since
        its count no longer limits anyone; an overrun is then added to the current window.
        """
        self.roll(clock)
        if reserved_minute == self.minute:
            self.minute_tokens = max(0, self.minute_tokens + delta)
        elif delta > 0:
            self.minute_tokens += delta
        if reserved_window == self.window:
            self.window_tokens = max(0, self.window_tokens + delta)
        elif delta > 0:
            self.window_tokens += delta


@dataclass(frozen=True, slots=True)
class Clock:
    """A moment, as the minute and the short window it falls in."""

    now_ms: int
    window_seconds: int

    @property
    def minute(self) -> int:
        return self.now_ms // MINUTE_MS

    @property
    def window(self) -> int:
        return self.now_ms // (self.window_seconds * 1000)

    def ms_to_minute_end(self) -> int:
        return (self.minute + 1) * MINUTE_MS - self.now_ms

    def ms_to_window_end(self) -> int:
        return (self.window + 1) * self.window_seconds * 1000 - self.now_ms


def per_window(per_minute: int, window_seconds: int) -> int:
    """A per-minute limit's share of one short window, rounded up; the minute's own count keeps
    the total exact when the minute does not divide evenly."""
    return math.ceil(per_minute * window_seconds / 60)


RefusalKind = Literal["token", "call"]  # Azure's words: "token rate limit", "call rate limit"


@dataclass(frozen=True, slots=True)
class Refusal:
    wait_ms: int  # until every window that refused has ended
    kind: RefusalKind
    bucket: Bucket


def refusal(bucket: Bucket, counters: Counters, cost: int, clock: Clock) -> Refusal | None:
    """Why ``bucket`` cannot admit a request reserving ``cost`` tokens now, or None if it can.

    ``counters`` must already be rolled to ``clock``.
    """
    limit, seconds = bucket.limit, clock.window_seconds
    wait = 0
    kind: RefusalKind | None = None
    rpm, tpm = limit.requests_per_minute, limit.tokens_per_minute
    if rpm is not None:
        if counters.minute_requests + 1 > rpm:
            wait, kind = max(wait, clock.ms_to_minute_end()), "call"
        if counters.window_requests + 1 > per_window(rpm, seconds):
            wait, kind = max(wait, clock.ms_to_window_end()), "call"
    if tpm is not None:
        if counters.minute_requests and counters.minute_tokens + cost > tpm:
            wait, kind = max(wait, clock.ms_to_minute_end()), kind or "token"
        if counters.window_requests and counters.window_tokens + cost > per_window(tpm, seconds):
            wait, kind = max(wait, clock.ms_to_window_end()), kind or "token"
    return None if kind is None else Refusal(wait, kind, bucket)


@dataclass(frozen=True, slots=True)
class Remaining:
    """What could still be admitted right now, for the x-ratelimit-remaining-* headers."""

    tokens: int | None
    requests: int | None

    @staticmethod
    def after(buckets: Sequence[Bucket], counters: Sequence[Counters], window_seconds: int) -> Remaining:
        tokens: int | None = None
        requests: int | None = None
        for bucket, used in zip(buckets, counters, strict=True):
            tpm, rpm = bucket.limit.tokens_per_minute, bucket.limit.requests_per_minute
            if tpm is not None:
                left = min(tpm - used.minute_tokens,
                           per_window(tpm, window_seconds) - used.window_tokens)
                tokens = left if tokens is None else min(tokens, left)
            if rpm is not None:
                left = min(rpm - used.minute_requests,
                           per_window(rpm, window_seconds) - used.window_requests)
                requests = left if requests is None else min(requests, left)
        return Remaining(
            None if tokens is None else max(0, tokens),
            None if requests is None else max(0, requests),
        )
