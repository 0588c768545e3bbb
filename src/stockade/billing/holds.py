"""What budgets have spent and hold this period: in this process, or shared through Redis.

Money is counted in whole nanos of billing.currency (1e-9), so that Redis adds it exactly. Each
budget's period is one account: spent (settled calls) and held (the maximum cost of the calls
still running). A hold checks and charges every account of a call in one step (one Lua script
in Redis), so concurrent calls on any number of replicas cannot together pass a hard amount.

An account missing (a new period, a restarted Redis) is seeded from the store's record of what
the scope spent since the period began, then kept right by each settled call. If Redis cannot be
reached, each replica falls back to local accounts, seeded from the store, with its share of what
is left of each amount (what is left divided by ``replicas``), and tries Redis again after
``RETRY_SECONDS``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from stockade.config import Settings

log = logging.getLogger(__name__)

NANOS = 1_000_000_000
RETRY_SECONDS = 1.0
TIMEOUT_SECONDS = 0.5
KEPT_AFTER_PERIOD_MS = 2 * 86_400_000  # for the console's view of the period just ended


def nanos(amount: float) -> int:
    return round(amount * NANOS)


@dataclass(frozen=True, slots=True)
class Account:
    """One budget's period. ``limit`` (nanos) is None for a budget that only alerts; ``seed``
    reads what the scope spent this period from the store (blocking: run in a thread)."""

    key: str
    limit: int | None
    ends_ms: int
    seed: Callable[[], float]


@dataclass(frozen=True, slots=True)
class Refusal:
    """The account a hold would have taken past its limit, and where it stood."""

    index: int
    spent: int
    held: int


@dataclass(slots=True)
class Hold:
    accounts: Sequence[Account]
    cost: int
    local: bool = False  # held by the fallback accounts while Redis was unreachable
    settled: bool = False


class Ledger(Protocol):
    async def hold(self, accounts: Sequence[Account], cost: int) -> Hold | Refusal: ...

    async def settle(self, hold: Hold, actual: int) -> list[int]:
        """Release the hold and charge ``actual``; the accounts' spent after it."""
        ...

    async def state(self, account: Account) -> tuple[int, int]:
        """Spent and held."""
        ...

    async def close(self) -> None: ...


class LocalLedger:
    """Accounts in this process's memory: exact for one process."""

    def __init__(self, replicas: int = 1) -> None:
        """``replicas`` > 1 gives this process only its share of what is left when an account is
        seeded (the Redis ledger's fallback)."""
        self.replicas = replicas
        self._accounts: dict[str, list[int]] = {}  # key: [spent, held, allowance or -1, ends_ms]
        self._seeding: dict[str, asyncio.Lock] = {}

    async def _account(self, account: Account) -> list[int]:
        entry = self._accounts.get(account.key)
        if entry is not None:
            return entry
        lock = self._seeding.setdefault(account.key, asyncio.Lock())
        async with lock:
            entry = self._accounts.get(account.key)
            if entry is None:
                spent = nanos(await asyncio.to_thread(account.seed))
                allowance = -1
                if account.limit is not None:
                    allowance = spent + max(0, account.limit - spent) // self.replicas
                self._forget_ended()
                entry = self._accounts[account.key] = [spent, 0, allowance, account.ends_ms]
        self._seeding.pop(account.key, None)
        return entry

    def _forget_ended(self) -> None:
        """Drop the accounts of periods long ended: no call holds them any more (a new period
        is a new account), and a late settle of one charges nothing that is shown."""
        long_ago = time.time() * 1000 - KEPT_AFTER_PERIOD_MS
        for key in [key for key, entry in self._accounts.items() if entry[3] < long_ago]:
            del self._accounts[key]

    async def hold(self, accounts: Sequence[Account], cost: int) -> Hold | Refusal:
        entries = [await self._account(account) for account in accounts]
        # No await from here on: the check and the charge are one step for this event loop.
        for index, (account, (spent, held, allowance, _)) in enumerate(zip(accounts, entries, strict=True)):
            if account.limit is None:
                continue
            limit = min(account.limit, allowance) if allowance >= 0 else account.limit
            if spent >= limit or spent + held + cost > limit:
                return Refusal(index, spent, held)
        for entry in entries:
            entry[1] += cost
        return Hold(accounts, cost, local=True)

    async def settle(self, hold: Hold, actual: int) -> list[int]:
        hold.settled = True
        spent = []
        for account in hold.accounts:
            entry = self._accounts.get(account.key)
            if entry is None:  # forgotten with its ended period
                spent.append(0)
                continue
            entry[0] += actual
            entry[1] = max(0, entry[1] - hold.cost)
            spent.append(entry[0])
        return spent

    async def state(self, account: Account) -> tuple[int, int]:
        spent, held, _, _ = await self._account(account)
        if self.replicas > 1:  # this process has seen its own calls only: the store has them all
            spent = max(spent, nanos(await asyncio.to_thread(account.seed)))
        return spent, held

    def forget(self) -> None:
        self._accounts.clear()

    async def close(self) -> None:
        self.forget()


# KEYS: the accounts. ARGV: cost, then each account's limit (-1: none).
# Returns {-1, i} if account i is missing (to be seeded), {0, i, spent, held} if it refuses, {1}.
HOLD = """
local cost = tonumber(ARGV[1])
local state = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('HMGET', key, 's', 'h')
  if not v[1] then return {-1, i} end
  local spent, held = tonumber(v[1]), tonumber(v[2] or '0')
  local limit = tonumber(ARGV[1 + i])
  if limit >= 0 and (spent >= limit or spent + held + cost > limit) then
    return {0, i, tostring(spent), tostring(held)}
  end
end
for _, key in ipairs(KEYS) do redis.call('HINCRBY', key, 'h', cost) end
return {1}
"""

# KEYS: the accounts. ARGV: the cost held, the actual cost. Returns each account's spent after.
SETTLE = """
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    local held = redis.call('HINCRBY', key, 'h', -tonumber(ARGV[1]))
    if held < 0 then redis.call('HSET', key, 'h', 0) end
    out[i] = tostring(redis.call('HINCRBY', key, 's', tonumber(ARGV[2])))
  else
    out[i] = '0'
  end
end
return out
"""

# KEYS: one account. ARGV: its spent from the store, when it expires (ms since the epoch).
SEED = """
if redis.call('HSETNX', KEYS[1], 's', ARGV[1]) == 1 then
  redis.call('HSETNX', KEYS[1], 'h', 0)
  redis.call('PEXPIREAT', KEYS[1], ARGV[2])
end
return 1
"""


class RedisLedger:
    """Accounts in Redis, shared by every replica."""

    def __init__(self, url: str, replicas: int, *, prefix: str = "stockade:budget:") -> None:
        self.prefix = prefix
        # No retries inside the client: a call must not wait on a Redis that is gone.
        self.redis = Redis.from_url(
            url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
        )
        self._hold = self.redis.register_script(HOLD)
        self._settle = self.redis.register_script(SETTLE)
        self._seed = self.redis.register_script(SEED)
        self.fallback = LocalLedger(replicas)
        self._down_until = 0.0

    def _keys(self, accounts: Sequence[Account]) -> list[str]:
        return [self.prefix + account.key for account in accounts]

    def _failed(self, exc: Exception) -> None:
        if self._down_until == 0.0:
            log.error(
                "Redis is unreachable (%s); budgets are held locally, with this replica's share "
                "of what is left of each, until it is back", exc,
            )
        self._down_until = time.monotonic() + RETRY_SECONDS

    def _recovered(self) -> None:
        if self._down_until != 0.0:
            log.warning("Redis is reachable again; budgets are shared across replicas again")
            self._down_until = 0.0
            # Seeded when Redis went away: stale by the next outage. Their holds settle to nothing.
            self.fallback.forget()

    async def _seeded(self, account: Account) -> None:
        spent = nanos(await asyncio.to_thread(account.seed))
        await self._seed(keys=self._keys([account]), args=[spent, account.ends_ms + KEPT_AFTER_PERIOD_MS])

    async def hold(self, accounts: Sequence[Account], cost: int) -> Hold | Refusal:
        if time.monotonic() >= self._down_until:
            args = [cost, *(-1 if a.limit is None else a.limit for a in accounts)]
            try:
                # Each round seeds one missing account; a call has at most a few.
                for _ in range(len(accounts) + 1):
                    result = await self._hold(keys=self._keys(accounts), args=args)
                    if int(result[0]) != -1:
                        break
                    await self._seeded(accounts[int(result[1]) - 1])
                if int(result[0]) == -1:  # expired again as soon as seeded: an ended period
                    raise RedisError("a budget's account could not be seeded")
            except RedisError as exc:
                self._failed(exc)
            else:
                self._recovered()
                if int(result[0]) == 0:
                    return Refusal(int(result[1]) - 1, int(result[2]), int(result[3]))
                return Hold(accounts, cost)
        return await self.fallback.hold(accounts, cost)

    async def settle(self, hold: Hold, actual: int) -> list[int]:
        if hold.local:
            return await self.fallback.settle(hold, actual)
        hold.settled = True
        try:
            spent = await self._settle(keys=self._keys(hold.accounts), args=[hold.cost, actual])
        except RedisError as exc:
            # The hold stands until the period ends; the store has the call's cost meanwhile.
            log.debug("settling a budget hold in Redis failed: %s", exc)
            return [0 for _ in hold.accounts]
        return [int(value) for value in spent]

    async def state(self, account: Account) -> tuple[int, int]:
        try:
            values = await self.redis.hmget(self.prefix + account.key, ["s", "h"])
            if values[0] is None:
                await self._seeded(account)
                values = await self.redis.hmget(self.prefix + account.key, ["s", "h"])
        except RedisError:
            return await self.fallback.state(account)
        return int(values[0] or 0), int(values[1] or 0)

    async def close(self) -> None:
        await self.fallback.close()
        await self.redis.aclose()


def create_ledger(settings: Settings) -> Ledger:
    """Redis when ``redis_url`` is set, so replicas share budgets; otherwise in-process. Without
    Redis, each of a replica's HTTP worker processes holds its share of what is left of each
    budget (seeded from the store), so that together they cannot overspend."""
    if settings.redis_url:
        return RedisLedger(settings.redis_url, settings.limits.replicas * settings.workers)
    return LocalLedger(settings.workers)
