"""Budgets on the request path: hold a call's maximum cost before it runs, settle it after.

``Spending`` keeps the budgets in memory, indexed by what they apply to, so that a call no budget
applies to costs one dictionary lookup or two. A call some budget applies to holds its maximum
cost (its prompt at the input price, max_tokens for each choice at the output price; batch lines
at the batch discount; nothing on a provisioned deployment) in every such budget's account for
the period, as the rate limiter reserves tokens. A hard budget refuses the hold that would take
spent and held past its amount. When the call ends, the hold is released and its actual cost
charged; a threshold newly crossed fires an alert (``alerts``) in the background.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prometheus_client import Gauge

from stockade.access import ENTRA, Principal
from stockade.billing.alerts import Alert, Alerts
from stockade.billing.holds import NANOS, Account, Hold, Ledger, Refusal, nanos
from stockade.billing.prices import PriceTable
from stockade.errors import BudgetExceeded
from stockade.store import Deployment, Store
from stockade.store.budgets import Budget
from stockade.telemetry import metrics


def period_bounds(period: str, now: float) -> tuple[float, float]:
    """The UTC day or month ``now`` falls in, as [start, end) in seconds since the epoch."""
    moment = datetime.fromtimestamp(now, UTC)
    if period == "day":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + timedelta(days=1)
    else:
        start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (start + timedelta(days=32)).replace(day=1)
    return start.timestamp(), end.timestamp()


@dataclass(slots=True)
class Held:
    """A call's hold on its budgets, and what its actual cost is reckoned from."""

    budgets: tuple[Budget, ...]
    periods: tuple[tuple[float, float], ...]
    hold: Hold
    model: str
    sku: str
    batch: bool
    at: float


class Spending:
    def __init__(
        self,
        ledger: Ledger,
        store: Store,
        prices: Callable[[], PriceTable],
        alerts: Alerts,
        currency: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``prices`` gives the price table in force (reloaded elsewhere); ``clock`` (seconds)
        decides the period, and tests move it."""
        self.ledger = ledger
        self.store = store
        self.prices = prices
        self.alerts = alerts
        self.currency = currency
        self.clock = clock
        self._resource: tuple[Budget, ...] = ()
        self._deployments: dict[str, tuple[Budget, ...]] = {}
        self._keys: dict[str, tuple[Budget, ...]] = {}
        self._periods: dict[str, tuple[float, float]] = {}
        self._fired: set[tuple[str, float, float]] = set()  # seen fired here: no store round trip
        self._accounts: dict[tuple[Budget, float, str | None], Account] = {}
        self._ratios: dict[str, Gauge] = {}  # each budget's series, looked up once

    def load(self, budgets: list[Budget]) -> None:
        by_deployment: dict[str, list[Budget]] = {}
        by_key: dict[str, list[Budget]] = {}
        for budget in budgets:
            if budget.scope == "deployment" and budget.target is not None:
                by_deployment.setdefault(budget.target, []).append(budget)
            elif budget.scope == "key" and budget.target is not None:
                by_key.setdefault(budget.target, []).append(budget)
        self._resource = tuple(b for b in budgets if b.scope == "resource")
        self._deployments = {name: tuple(found) for name, found in by_deployment.items()}
        self._keys = {name: tuple(found) for name, found in by_key.items()}
        self._accounts.clear()
        for gone in set(self._ratios) - {budget.name for budget in budgets}:
            metrics.BUDGET_SPENT_RATIO.remove(gone)  # a deleted budget's series ends
            del self._ratios[gone]

    def applicable(self, deployment: str, principal: Principal) -> tuple[Budget, ...]:
        """The budgets a call of ``principal`` on ``deployment`` spends from (the hot path)."""
        found = self._resource
        if self._deployments:
            found += self._deployments.get(deployment, ())
        if self._keys and principal.kind != ENTRA:
            found += self._keys.get(principal.name, ())
        return found

    def period(self, budget: Budget, now: float) -> tuple[float, float]:
        bounds = self._periods.get(budget.period)
        if bounds is None or not bounds[0] <= now < bounds[1]:
            bounds = self._periods[budget.period] = period_bounds(budget.period, now)
        return bounds

    def account(self, budget: Budget, bounds: tuple[float, float], key_id: str | None) -> Account:
        start, end = bounds
        key = key_id if budget.scope == "key" else None
        cached = self._accounts.get((budget, start, key))
        if cached is not None:
            return cached
        if len(self._accounts) > 4096:  # periods gone by, or keys' ids: made again when needed
            self._accounts.clear()
        deployment = budget.target if budget.scope == "deployment" else None
        made = self._accounts[(budget, start, key)] = Account(
            f"{budget.name}:{budget.scope}:{budget.target or ''}:{int(start)}",
            nanos(budget.amount) if budget.hard else None,
            int(end * 1000),
            lambda: self.store.spent(start, end, deployment=deployment, key_id=key),
        )
        return made

    async def hold(
        self, budgets: tuple[Budget, ...], deployment: Deployment, principal: Principal,
        prompt_tokens: int, completion_tokens: int, batch: bool,
    ) -> Held:
        """Hold the call's maximum cost in every budget's account, or raise ``BudgetExceeded``."""
        now = self.clock()
        cost = self.prices().cost(
            deployment.model, prompt_tokens, completion_tokens, now, batch=batch, sku=deployment.sku
        )
        periods = tuple(self.period(budget, now) for budget in budgets)
        accounts = [self.account(b, p, principal.id) for b, p in zip(budgets, periods, strict=True)]
        outcome = await self.ledger.hold(accounts, nanos(cost or 0.0))
        if isinstance(outcome, Refusal):
            budget = budgets[outcome.index]
            metrics.BUDGET_REFUSALS.labels(budget.name).inc()
            raise self._refused(budget, periods[outcome.index], outcome, cost or 0.0, now)
        return Held(budgets, periods, outcome, deployment.model, deployment.sku, batch, now)

    async def settle(self, held: Held, prompt_tokens: int, completion_tokens: int) -> None:
        """Release the hold and charge what the call really cost; settling again changes nothing."""
        if held.hold.settled:
            return
        cost = self.prices().cost(
            held.model, prompt_tokens, completion_tokens, held.at, batch=held.batch, sku=held.sku
        )
        spent = await self.ledger.settle(held.hold, nanos(cost or 0.0))
        for budget, bounds, total in zip(held.budgets, held.periods, spent, strict=True):
            self._crossed(budget, bounds, total / NANOS)

    def _crossed(self, budget: Budget, bounds: tuple[float, float], spent: float) -> None:
        ratio = self._ratios.get(budget.name)
        if ratio is None:
            ratio = self._ratios[budget.name] = metrics.BUDGET_SPENT_RATIO.labels(budget.name)
        ratio.set(spent / budget.amount)
        for threshold in budget.thresholds:
            seen = (budget.name, bounds[0], threshold)
            if spent >= threshold * budget.amount and seen not in self._fired:
                self._fired.add(seen)
                self.alerts.fire(Alert(budget, bounds[0], bounds[1], threshold, spent))

    def _refused(
        self, budget: Budget, bounds: tuple[float, float], refusal: Refusal, cost: float, now: float
    ) -> BudgetExceeded:
        end = datetime.fromtimestamp(bounds[1], UTC).strftime("%Y-%m-%d %H:%M UTC")
        held = f" and {refusal.held / NANOS:.4f} is held by calls under way" if refusal.held else ""
        target = "the resource" if budget.scope == "resource" else f"{budget.scope} {budget.target!r}"
        return BudgetExceeded(
            f"This call is refused by the hard budget {budget.name!r} of {target}: "
            f"{refusal.spent / NANOS:.4f} of its {budget.amount:g} {self.currency} for this "
            f"{budget.period} is spent{held}, and this call could cost up to {cost:.4f}. The budget "
            f"resets at {end}. To go on sooner, raise its amount (`stockade budgets update "
            f"{budget.name} --amount N`), or send fewer tokens (a lower max_tokens holds less).",
            retry_after_ms=max(1, int((bounds[1] - now) * 1000)),
        )

    async def state(self, budget: Budget) -> tuple[float, float, tuple[float, float]]:
        """A budget's spent and held this period, and the period (for the management API)."""
        bounds = self.period(budget, self.clock())
        key_id = None
        if budget.scope == "key":
            keys = await asyncio.to_thread(self.store.active_keys)
            key_id = next((k.id for k in keys if k.name == budget.target), "")
        spent, held = await self.ledger.state(self.account(budget, bounds, key_id))
        return spent / NANOS, held / NANOS, bounds

    async def close(self) -> None:
        await self.alerts.close()
        await self.ledger.close()
