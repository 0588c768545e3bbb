"""The budgets' accounts on their own: in process, shared through a real Redis, and the fallback
when Redis cannot be reached. Amounts are in nanos of the currency, as the ledgers count."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from stockade.billing.holds import Account, Hold, LocalLedger, RedisLedger, Refusal

REDIS_URL = "redis://127.0.0.1:6379/0"
UNREACHABLE = "redis://127.0.0.1:9/0"  # the discard port: nothing listens


def account(limit: int | None = 100, seeded: float = 0.0) -> Account:
    """A fresh account (new key) whose store says ``seeded`` (currency units) was spent."""
    return Account(f"test-{uuid.uuid4().hex}:resource::0", limit, 4_102_444_800_000, lambda: seeded / 1e9)


def test_a_local_hold_refuses_what_would_pass_the_limit_and_settles_to_the_actual_cost() -> None:
    async def run() -> tuple[object, object, tuple[int, int]]:
        ledger = LocalLedger()
        shared = account(100)
        first = await ledger.hold([shared], 60)
        second = await ledger.hold([shared], 60)  # 60 held + 60 > 100
        assert isinstance(first, Hold)
        await ledger.settle(first, 30)
        return first, second, await ledger.state(shared)

    _, second, state = asyncio.run(run())
    assert isinstance(second, Refusal) and (second.spent, second.held) == (0, 60)
    assert state == (30, 0)


def test_a_local_account_starts_from_what_the_store_recorded() -> None:
    async def run() -> object:
        ledger = LocalLedger()
        return await ledger.hold([account(100, seeded=90)], 20)

    refused = asyncio.run(run())
    assert isinstance(refused, Refusal) and refused.spent == 90


def test_each_of_several_workers_holds_only_its_share_of_what_is_left() -> None:
    async def run() -> tuple[object, object]:
        ledger = LocalLedger(replicas=2)
        shared = account(100, seeded=20)  # 80 left: 40 for this worker
        return await ledger.hold([shared], 40), await ledger.hold([shared], 1)

    first, second = asyncio.run(run())
    assert isinstance(first, Hold) and isinstance(second, Refusal)


@pytest.mark.redis
def test_redis_accounts_are_seeded_once_and_shared_by_ledgers() -> None:
    async def run() -> tuple[object, object, tuple[int, int]]:
        one, other = RedisLedger(REDIS_URL, 1), RedisLedger(REDIS_URL, 1)
        shared = account(100, seeded=30)
        try:
            first = await one.hold([shared], 50)  # 30 seeded + 50 held
            second = await other.hold([shared], 50)  # would make 130
            assert isinstance(first, Hold)
            await one.settle(first, 10)
            return first, second, await other.state(shared)
        finally:
            await one.close()
            await other.close()

    _, second, state = asyncio.run(run())
    assert isinstance(second, Refusal) and (second.spent, second.held) == (30, 50)
    assert state == (40, 0)


@pytest.mark.redis
def test_concurrent_redis_holds_never_pass_the_limit() -> None:
    async def run() -> list[object]:
        ledgers = [RedisLedger(REDIS_URL, 1) for _ in range(4)]
        shared = account(1000)
        try:
            return await asyncio.gather(*(ledgers[i % 4].hold([shared], 300) for i in range(40)))
        finally:
            for ledger in ledgers:
                await ledger.close()

    held = [outcome for outcome in asyncio.run(run()) if isinstance(outcome, Hold)]
    assert len(held) == 3


def test_without_redis_a_replica_holds_its_share_locally() -> None:
    async def run() -> tuple[object, object]:
        ledger = RedisLedger(UNREACHABLE, 2)
        shared = account(100)  # this replica may hold 50 of it
        try:
            return await ledger.hold([shared], 50), await ledger.hold([shared], 1)
        finally:
            await ledger.close()

    first, second = asyncio.run(run())
    assert isinstance(first, Hold) and first.local and isinstance(second, Refusal)
