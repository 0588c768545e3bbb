"""Admission: reserve a request's estimated tokens in every bucket it draws on, or refuse it.

``LocalLimiter`` keeps the counters in this process (the embedded default). ``RedisLimiter`` keeps
them in Redis, where one script checks and charges all buckets atomically, so any number of
replicas share one limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from stockade.errors import TooManyRequests
from stockade.quotas.limits import Bucket, Clock, Counters, Refusal, Remaining, refusal

if TYPE_CHECKING:
    from stockade.billing.budgets import Held


@dataclass(slots=True)
class Reservation:
    """Tokens held for one admitted call until it completes and its real usage is known."""

    buckets: Sequence[Bucket]
    cost: int
    minute: int
    window: int
    remaining: Remaining
    settled: bool = False
    local: bool = False  # held by a replica's fallback counters while Redis was unreachable
    budget: Held | None = None  # the call's hold on the budgets it spends from, if any


class Limiter(Protocol):
    window_seconds: int

    async def reserve(self, buckets: Sequence[Bucket], cost: int, operation: str) -> Reservation:
        """Admit a call reserving ``cost`` tokens, or raise ``TooManyRequests``."""
        ...

    async def settle(self, reservation: Reservation, actual_tokens: int) -> None:
        """Correct the reservation to what the call really used (see ``Counters.adjust``).
        Settling a reservation again changes nothing."""
        ...

    async def close(self) -> None: ...


# A refusal's reason in the metrics, by the bucket's scope (core/inference.py: "d:" a deployment's,
# "k:" a key's) and the limit that refused.
_REASONS = {
    ("d:", "token"): "deployment_tokens",
    ("d:", "call"): "deployment_requests",
    ("k:", "token"): "key_tokens",
    ("k:", "call"): "key_requests",
}


def too_many_requests(refused: Refusal, operation: str) -> TooManyRequests:
    """Azure's 429 wording, naming the limit and how to raise it."""
    limit = refused.bucket.limit
    if refused.kind == "token":
        what = f"{limit.tokens_per_minute:,} tokens per minute"
    else:
        what = f"{limit.requests_per_minute:,} requests per minute"
    seconds = -(-refused.wait_ms // 1000)
    return TooManyRequests(
        f"Requests to the {operation} Operation have exceeded the {refused.kind} rate limit of "
        f"{refused.bucket.label} ({what}). Please retry after "
        f"{seconds} second{'s' if seconds != 1 else ''}. {refused.bucket.remedy}".rstrip(),
        retry_after_ms=refused.wait_ms,
        reason=_REASONS.get((refused.bucket.scope[:2], refused.kind), "other"),
    )


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class LocalLimiter:
    """Counters in this process's memory: exact for one server, with no extra service."""

    def __init__(self, window_seconds: int, *, clock: Callable[[], int] | None = None) -> None:
        self.window_seconds = window_seconds
        self._now = clock or wall_clock_ms
        self._counters: dict[str, Counters] = {}

    def _clock(self) -> Clock:
        return Clock(self._now(), self.window_seconds)

    def admit(self, buckets: Sequence[Bucket], cost: int) -> Reservation | Refusal:
        """Reserve ``cost`` tokens in every bucket, or say which refused and for how long."""
        clock = self._clock()
        counters = [self._counters.setdefault(bucket.scope, Counters()) for bucket in buckets]
        refusals = []
        for bucket, used in zip(buckets, counters, strict=True):
            used.roll(clock)
            if (refused := refusal(bucket, used, cost, clock)) is not None:
                refusals.append(refused)
        if refusals:
            return max(refusals, key=lambda r: r.wait_ms)
        for used in counters:
            used.charge(cost)
        remaining = Remaining.after(buckets, counters, self.window_seconds)
        return Reservation(buckets, cost, clock.minute, clock.window, remaining)

    async def reserve(self, buckets: Sequence[Bucket], cost: int, operation: str) -> Reservation:
        outcome = self.admit(buckets, cost)
        if isinstance(outcome, Refusal):
            raise too_many_requests(outcome, operation)
        return outcome

    def adjust(self, scopes: Iterable[str], minute: int, window: int, delta: int) -> None:
        """Apply a settled call's ``delta`` (actual minus reserved) to the windows it was
        reserved in (see ``Counters.adjust``)."""
        clock = self._clock()
        for scope in scopes:
            self._counters.setdefault(scope, Counters()).adjust(minute, window, delta, clock)

    async def settle(self, reservation: Reservation, actual_tokens: int) -> None:
        if reservation.settled:
            return
        reservation.settled = True
        self.adjust(
            (bucket.scope for bucket in reservation.buckets),
            reservation.minute,
            reservation.window,
            actual_tokens - reservation.cost,
        )

    async def close(self) -> None:
        self._counters.clear()
