"""SQL for budgets and the alert thresholds they have fired.

Every change bumps the store's revision, so that every replica reloads its budgets. A threshold
fires by inserting its ``budget_alerts`` row: the primary key (budget, period start, threshold)
lets exactly one insert win, on any number of replicas.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from stockade.store.tables import budget_alerts, budgets

SCOPES = ("key", "deployment", "resource")
PERIODS = ("day", "month")
DEFAULT_THRESHOLDS = (0.5, 0.8, 1.0)


@dataclass(frozen=True, slots=True)
class Budget:
    name: str
    scope: str  # one of SCOPES
    target: str | None  # the key's or the deployment's name; None for the resource
    period: str  # one of PERIODS, in UTC
    amount: float  # in billing.currency
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS  # shares of amount, ascending
    hard: bool = False  # refuse calls that would take spending past the amount
    webhook: str | None = None  # POSTed each threshold as it fires
    created_at: float = 0.0
    updated_at: float = 0.0


def _row(budget: Budget) -> dict[str, Any]:
    return {**dataclasses.asdict(budget), "thresholds": json.dumps(list(budget.thresholds))}


def _budget(row: sa.Row[Any]) -> Budget:
    values = dict(row._mapping)
    return Budget(**{**values, "thresholds": tuple(json.loads(values["thresholds"]))})


class BudgetStore:
    def __init__(self, engine: sa.Engine, bump: Callable[[sa.Connection], None]) -> None:
        """``bump`` moves the store's revision, which replicas watch to reload."""
        self.engine = engine
        self._bump = bump

    def all(self) -> list[Budget]:
        with self.engine.connect() as connection:
            return [_budget(row) for row in connection.execute(sa.select(budgets).order_by(budgets.c.name))]

    def get(self, name: str) -> Budget | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(budgets).where(budgets.c.name == name)).first()
        return None if row is None else _budget(row)

    def insert(self, budget: Budget) -> bool:
        """Insert unless the name is taken; returns whether it was inserted."""
        with self.engine.begin() as connection:
            self._bump(connection)  # first: takes the write lock before the check
            if connection.scalar(sa.select(budgets.c.name).where(budgets.c.name == budget.name)):
                connection.rollback()
                return False
            connection.execute(budgets.insert().values(**_row(budget)))
        return True

    def replace(self, budget: Budget) -> bool:
        """Write ``budget`` over the one of its name; False if there is none."""
        with self.engine.begin() as connection:
            self._bump(connection)
            values = {k: v for k, v in _row(budget).items() if k not in ("name", "created_at")}
            updated = connection.execute(budgets.update().where(budgets.c.name == budget.name).values(**values))
            return updated.rowcount > 0

    def delete(self, name: str) -> bool:
        with self.engine.begin() as connection:
            self._bump(connection)
            connection.execute(budget_alerts.delete().where(budget_alerts.c.budget == name))
            return connection.execute(budgets.delete().where(budgets.c.name == name)).rowcount > 0

    def fire(self, name: str, period_start: float, threshold: float, spent: float, at: float) -> bool:
        """Record that ``threshold`` fired in the period; False if it had already (here or on
        another replica)."""
        row = {"budget": name, "period_start": period_start, "threshold": threshold, "spent": spent, "fired_at": at}
        try:
            with self.engine.begin() as connection:
                connection.execute(budget_alerts.insert().values(**row))
        except sa.exc.IntegrityError:
            return False
        return True

    def fired(self, period_starts: dict[str, float]) -> dict[str, list[float]]:
        """The thresholds each budget has fired in the period given for it."""
        if not period_starts:
            return {}
        query = sa.select(budget_alerts.c.budget, budget_alerts.c.period_start, budget_alerts.c.threshold).where(
            budget_alerts.c.budget.in_(list(period_starts))
        )
        shown: dict[str, list[float]] = {name: [] for name in period_starts}
        with self.engine.connect() as connection:
            for name, start, threshold in connection.execute(query):
                if start == period_starts[name]:
                    shown[name].append(threshold)
        return {name: sorted(values) for name, values in shown.items()}
