"""Budget alerts: a threshold crossed is recorded once per period, then sent to the budget's
webhook and written to the audit log, in a background task (never on a call's path).

Each alert's row in ``budget_alerts`` is inserted first: the replica whose insert wins sends the
webhook, so a threshold fires once however many replicas see it crossed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

from stockade.store import AuditEvent, Store
from stockade.store.budgets import Budget
from stockade.tracebacks import without_messages

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 5.0
ACTOR_ID = "budgets"  # the audit log's actor for alerts, which no caller performs
ACTOR = "budget alerts"
ACTION = "budgets.alert"
UNREACHED = 0  # the audit status of a webhook that could not be reached


@dataclass(frozen=True, slots=True)
class Alert:
    budget: Budget
    period_start: float
    period_end: float
    threshold: float
    spent: float

    def payload(self, currency: str) -> dict[str, Any]:
        """What the webhook is sent: the budget's state, never anything of a call."""
        budget = self.budget
        return {
            "budget": budget.name, "scope": budget.scope, "target": budget.target,
            "period": budget.period, "period_start": self.period_start, "period_end": self.period_end,
            "threshold": self.threshold, "spent": round(self.spent, 9), "amount": budget.amount,
            "currency": currency,
        }


class Alerts:
    def __init__(self, store: Store, currency: str) -> None:
        self._store = store
        self._currency = currency
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    def fire(self, alert: Alert) -> None:
        """Record, send and audit ``alert`` in the background, unless it has fired already."""
        task = asyncio.get_running_loop().create_task(self._fire(alert))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fire(self, alert: Alert) -> None:
        budget = alert.budget
        try:
            fired = await asyncio.to_thread(
                self._store.budgets.fire, budget.name, alert.period_start, alert.threshold, alert.spent, time.time()
            )
            if not fired:
                return
            status = 200 if budget.webhook is None else await self._send(budget.webhook, alert)
            event = AuditEvent(
                ts=time.time(), actor_id=ACTOR_ID, actor=ACTOR, source="server", action=ACTION,
                target=f"{budget.name}: {alert.threshold:.0%} of {budget.amount:g} {self._currency} "
                f"spent ({alert.spent:.6g})",
                status=status,
            )
            await asyncio.to_thread(self._store.insert_audit, event)
        except Exception as exc:  # the store may be down: the next crossing tries again
            log.error("could not record budget %s's %s alert\n%s", budget.name, alert.threshold,
                      without_messages(exc))

    async def _send(self, url: str, alert: Alert) -> int:
        """POST the alert; its HTTP status, or UNREACHED. Failures are logged, never raised."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False)
        try:
            response = await self._client.post(url, json=alert.payload(self._currency))
        except httpx.HTTPError as exc:
            log.warning("budget %s's webhook could not be reached (%s)", alert.budget.name, type(exc).__name__)
            return UNREACHED
        if response.status_code >= 300:
            log.warning("budget %s's webhook answered %d", alert.budget.name, response.status_code)
        return response.status_code

    async def drain(self) -> None:
        """Wait for the alerts under way (tests; and closing, so that none is lost)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drain(), WEBHOOK_TIMEOUT_SECONDS * 2)
        if self._client is not None:
            await self._client.aclose()
