"""What budgets cost a call: the lookup every call makes, and a hold and its settlement for a call
a budget applies to, in process and through Redis on loopback (redis://127.0.0.1:6379/0).

Run with `python bench/budget_holds.py`; figures go to docs/budgets.md.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import timeit
import uuid

from stockade.access import Principal
from stockade.access.roles import Grant
from stockade.billing import Price, PriceTable
from stockade.billing.alerts import Alerts
from stockade.billing.budgets import Spending
from stockade.billing.holds import Ledger, LocalLedger, RedisLedger
from stockade.store import Deployment, Store
from stockade.store.budgets import Budget

PRICES = PriceTable([Price("model", 0, 2.5, 10.0)])
PRINCIPAL = Principal("key-id", "team", (Grant("admin"),))
DEPLOYMENT = Deployment("chat", "model", "local", 10, 0, 0)


def spending(ledger: Ledger, budgets: list[Budget]) -> Spending:
    # Empty: every account is seeded with nothing spent.
    store = Store(f"sqlite:///{tempfile.mkdtemp(prefix='stockade-bench-')}/stockade.db")
    store.migrate()
    made = Spending(ledger, store, lambda: PRICES, Alerts(store, "USD"), "USD")
    made.load(budgets)
    return made


def lookup_ns(budgets: list[Budget], calls: int = 1_000_000) -> float:
    found = spending(LocalLedger(), budgets)
    return timeit.timeit(lambda: found.applicable("chat", PRINCIPAL), number=calls) / calls * 1e9


async def hold_and_settle_us(ledger: Ledger, calls: int) -> float:
    # Never alerts (threshold 2 of an amount never reached): the alert task is not measured.
    budget = Budget(f"bench-{uuid.uuid4().hex[:8]}", "deployment", "chat", "month", 1e12, (2.0,), hard=True)
    found = spending(ledger, [budget])
    budgets = found.applicable("chat", PRINCIPAL)
    await found.settle(await found.hold(budgets, DEPLOYMENT, PRINCIPAL, 100, 100, False), 100, 50)  # seeded
    start = time.perf_counter()
    for _ in range(calls):
        held = await found.hold(budgets, DEPLOYMENT, PRINCIPAL, 100, 100, False)
        await found.settle(held, 100, 50)
    elapsed = time.perf_counter() - start
    await found.close()
    return elapsed / calls * 1e6


def main() -> None:
    print(f"lookup, no budgets:                    {lookup_ns([]):6.0f} ns a call")
    other = [Budget("other", "deployment", "elsewhere", "month", 100.0)]
    print(f"lookup, a budget of another deployment: {lookup_ns(other):6.0f} ns a call")
    local = asyncio.run(hold_and_settle_us(LocalLedger(), 20_000))
    print(f"hold + settle, in process:             {local:6.1f} us a call")
    shared = asyncio.run(hold_and_settle_us(RedisLedger("redis://127.0.0.1:6379/0", 1), 2_000))
    print(f"hold + settle, Redis on loopback:      {shared:6.0f} us a call")


if __name__ == "__main__":
    main()
