"""One limiter shared by every replica, kept in Redis.

Each bucket is one Redis hash holding the current minute's and short window's counts. A Lua
script reads and charges all the buckets of a call in one step, so concurrent calls on any number
of replicas see each other's reservations: the total admitted exceeds a limit by at most the one
request an empty window lets through. Windows follow Redis's clock, not the replicas'.

If Redis cannot be reached, each replica falls back to local counters with its share of every
limit (the limit divided by ``limits.replicas``), logs it, and shows it in the
``stockade_rate_limiter`` metric (state "fallback"); it tries Redis again after ``RETRY_SECONDS``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import cast

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from stockade.quotas.limiter import LocalLimiter, Reservation, too_many_requests
from stockade.quotas.limits import Bucket, Limit, Refusal, RefusalKind, Remaining
from stockade.telemetry import metrics

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0
TIMEOUT_SECONDS = 0.5
IDLE_EXPIRY_MS = 120_000

# Both scripts take the same clock preamble: ARGV[3] is a time in milliseconds, or "" for Redis's.
_CLOCK = """
local seconds = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local minute = math.floor(now / 60000)
local window = math.floor(now / (seconds * 1000))
local function roll(key)
  local v = redis.call('HMGET', key, 'm', 'mt', 'mr', 'w', 'wt', 'wr')
  local c = {0, 0, 0, 0}
  if tonumber(v[1]) == minute then c[1] = tonumber(v[2]); c[2] = tonumber(v[3]) end
  if tonumber(v[4]) == window then c[3] = tonumber(v[5]); c[4] = tonumber(v[6]) end
  return c
end
local function store(key, c)
  redis.call('HSET', key, 'm', minute, 'mt', c[1], 'mr', c[2], 'w', window, 'wt', c[3], 'wr', c[4])
  redis.call('PEXPIRE', key, IDLE_EXPIRY_MS)
end
""".replace("IDLE_EXPIRY_MS", str(IDLE_EXPIRY_MS))

# The same rule as limits.refusal, for every bucket at once.
# ARGV: cost, window seconds, now, then tokens and requests per minute per bucket (-1 = none).
# Returns {1, minute, window, remaining tokens, remaining requests} or {0, wait ms, kind, bucket}.
ADMIT = _CLOCK + """
local cost = tonumber(ARGV[1])
local to_minute_end = (minute + 1) * 60000 - now
local to_window_end = (window + 1) * seconds * 1000 - now
local counts = {}
local best_wait, best_kind, best_bucket = -1, '', 0
local rem_tokens, rem_requests = nil, nil
for i, key in ipairs(KEYS) do
  local tpm = tonumber(ARGV[2 + 2 * i])
  local rpm = tonumber(ARGV[3 + 2 * i])
  local c = roll(key)
  counts[i] = c
  local wait, kind = 0, nil
  if rpm >= 0 then
    if c[2] + 1 > rpm then wait = math.max(wait, to_minute_end); kind = 'call' end
    if c[4] + 1 > math.ceil(rpm * seconds / 60) then
      wait = math.max(wait, to_window_end); kind = 'call'
    end
  end
  if tpm >= 0 then
    if c[2] > 0 and c[1] + cost > tpm then
      wait = math.max(wait, to_minute_end); kind = kind or 'token'
    end
    if c[4] > 0 and c[3] + cost > math.ceil(tpm * seconds / 60) then
      wait = math.max(wait, to_window_end); kind = kind or 'token'
    end
  end
  if kind and wait > best_wait then best_wait, best_kind, best_bucket = wait, kind, i end
end
if best_bucket > 0 then return {0, best_wait, best_kind, best_bucket} end
for i, key in ipairs(KEYS) do
  local c = counts[i]
  c[1] = c[1] + cost; c[2] = c[2] + 1; c[3] = c[3] + cost; c[4] = c[4] + 1
  store(key, c)
  local tpm = tonumber(ARGV[2 + 2 * i])
  local rpm = tonumber(ARGV[3 + 2 * i])
  if tpm >= 0 then
    local left = math.min(tpm - c[1], math.ceil(tpm * seconds / 60) - c[3])
    if rem_tokens == nil or left < rem_tokens then rem_tokens = left end
  end
  if rpm >= 0 then
    local left = math.min(rpm - c[2], math.ceil(rpm * seconds / 60) - c[4])
    if rem_requests == nil or left < rem_requests then rem_requests = left end
  end
end
return {1, minute, window, rem_tokens or -1, rem_requests or -1}
"""

# The same rule as Counters.adjust. ARGV: delta, window seconds, now, reserved minute and window.
SETTLE = _CLOCK + """
local delta = tonumber(ARGV[1])
local reserved_minute = tonumber(ARGV[4])
local reserved_window = tonumber(ARGV[5])
for _, key in ipairs(KEYS) do
  local c = roll(key)
  if reserved_minute == minute then c[1] = math.max(0, c[1] + delta)
  elseif delta > 0 then c[1] = c[1] + delta end
  if reserved_window == window then c[3] = math.max(0, c[3] + delta)
  elseif delta > 0 then c[3] = c[3] + delta end
  store(key, c)
end
return 1
"""


def _per_minute(value: int | None) -> int:
    return -1 if value is None else value


class RedisLimiter:
    def __init__(
        self,
        url: str,
        window_seconds: int,
        replicas: int,
        *,
        prefix: str = "stockade:rl:",
        clock: Callable[[], int] | None = None,
    ) -> None:
        """``clock`` (milliseconds) replaces Redis's own clock; tests use it to step through time."""
        self.window_seconds = window_seconds
        self._clock = clock
        self.replicas = replicas
        self.prefix = prefix
        # No retries inside the client: a call must not wait on a Redis that is gone.
        self.redis = Redis.from_url(
            url,
            socket_timeout=TIMEOUT_SECONDS,
            socket_connect_timeout=TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
        )
        self._admit = self.redis.register_script(ADMIT)
        self._settle = self.redis.register_script(SETTLE)
        self.fallback = LocalLimiter(window_seconds, clock=clock)
        self._down_until = 0.0
        metrics.LIMITER_STATE.state("redis")

    def _keys(self, buckets: Sequence[Bucket]) -> list[str]:
        return [self.prefix + bucket.scope for bucket in buckets]

    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, exc: Exception) -> None:
        metrics.LIMITER_REDIS_ERRORS.inc()
        if self._down_until == 0.0:
            log.error(
                "Redis is unreachable (%s); limiting locally with 1/%d of each limit until it is "
                "back", exc, self.replicas,
            )
            metrics.LIMITER_STATE.state("fallback")
        self._down_until = time.monotonic() + RETRY_SECONDS

    def _recovered(self) -> None:
        if self._down_until != 0.0:
            log.warning("Redis is reachable again; rate limits are shared across replicas again")
            metrics.LIMITER_STATE.state("redis")
            self._down_until = 0.0

    def _share(self, bucket: Bucket) -> Bucket:
        limit = bucket.limit

        def part(value: int | None) -> int | None:
            return None if value is None else max(1, value // self.replicas)

        return replace(
            bucket,
            limit=Limit(part(limit.tokens_per_minute), part(limit.requests_per_minute)),
        )

    def _now(self) -> int | str:
        return "" if self._clock is None else self._clock()

    async def reserve(self, buckets: Sequence[Bucket], cost: int, operation: str) -> Reservation:
        if self._available():
            args: list[int | str] = [cost, self.window_seconds, self._now()]
            for bucket in buckets:
                args += [_per_minute(bucket.limit.tokens_per_minute),
                         _per_minute(bucket.limit.requests_per_minute)]
            try:
                result = await self._admit(keys=self._keys(buckets), args=args)
            except RedisError as exc:
                self._failed(exc)
            else:
                self._recovered()
                if result[0] == 0:
                    _, wait_ms, kind, index = result
                    # The script answers b"token" or b"call"; redis types its replies as Any.
                    refused = Refusal(
                        int(wait_ms), cast(RefusalKind, kind.decode()), buckets[int(index) - 1]
                    )
                    raise too_many_requests(refused, operation)
                _, minute, window, tokens, requests = (int(v) for v in result)
                remaining = Remaining(None if tokens < 0 else tokens, None if requests < 0 else requests)
                return Reservation(buckets, cost, minute, window, remaining)
        reservation = await self.fallback.reserve([self._share(b) for b in buckets], cost, operation)
        reservation.local = True
        return reservation

    async def settle(self, reservation: Reservation, actual_tokens: int) -> None:
        if reservation.settled:
            return
        if reservation.local:
            await self.fallback.settle(reservation, actual_tokens)
            return
        reservation.settled = True
        args = [actual_tokens - reservation.cost, self.window_seconds, self._now(),
                reservation.minute, reservation.window]
        try:
            await self._settle(keys=self._keys(reservation.buckets), args=args)
        except RedisError as exc:
            # The reservation simply stands until its windows end.
            log.debug("settling a reservation in Redis failed: %s", exc)

    async def close(self) -> None:
        await self.fallback.close()
        await self.redis.aclose()
