"""Usage summaries: the calls' totals from the store's rollups, with provisioned deployments'
hours priced on top.

A ProvisionedManaged deployment costs its capacity (PTUs) x its model's hourly_rate for every
hour it exists, whether called or not; its calls cost nothing per token. Its hours are counted
from its creation at its current capacity (the store keeps no history of a deployment's changes,
and none of deployments deleted since), to the second, under the price in effect at each moment.
They belong to a deployment, a model and a day, never to a caller: summaries by key, or of some
callers only, leave them out.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stockade.billing.prices import PROVISIONED, PriceTable
from stockade.store import Deployment, Store
from stockade.store.usage import DAY, By, Group, Totals

NONE_GROUP = "(none)"  # the group of calls that had no deployment, caller or model
QUANTILES = {"latency_p50_ms": 0.5, "latency_p95_ms": 0.95}


@dataclass(slots=True)
class Line:
    """A summary's row: its calls' totals, and the provisioned hours' cost."""

    totals: Totals
    hours_cost: float = 0.0
    hours_priced: bool = False

    def add(self, other: Line) -> None:
        self.totals.add(other.totals)
        self.hours_cost += other.hours_cost
        self.hours_priced |= other.hours_priced

    def shown(self) -> dict[str, Any]:
        totals = self.totals
        priced = totals.priced_calls > 0 or self.hours_priced
        return {
            "calls": totals.calls,
            "prompt_tokens": totals.prompt_tokens,
            "completion_tokens": totals.completion_tokens,
            "cost": round(totals.cost + self.hours_cost, 9) if priced else None,
            "errors": totals.errors,
            "throttled": totals.throttled,
            **{name: _ms(totals.latency_percentile(q)) for name, q in QUANTILES.items()},
        }


def provisioned_hours(
    deployment: Deployment, prices: PriceTable, since: float, until: float
) -> dict[int, float]:
    """What ``deployment``'s hours in [since, until) cost, per UTC day (its start); empty unless
    it is provisioned and its model has an hourly rate."""
    start, end = max(since, deployment.created_at), until
    if deployment.sku != PROVISIONED or start >= end:
        return {}
    cuts = {start, end}
    cuts.update(range(math.ceil(start / DAY) * DAY, math.ceil(end / DAY) * DAY, DAY))
    cuts.update(p.effective_from for p in prices if p.model == deployment.model and start < p.effective_from < end)
    points = sorted(cut for cut in cuts if start <= cut <= end)
    days: dict[int, float] = {}
    for begin, finish in itertools.pairwise(points):
        price = prices.price(deployment.model, begin)
        if price is not None and price.hourly_rate is not None:
            day = int(begin // DAY) * DAY
            days[day] = days.get(day, 0.0) + deployment.capacity * price.hourly_rate * (finish - begin) / 3600
    return days


def summarize(
    store: Store,
    prices: PriceTable,
    deployments: Iterable[Deployment],
    by: By,
    since: float,
    until: float,
    *,
    deployment: str | None = None,
    key_ids: Sequence[str] | None = None,
    known_callers: Mapping[str, str] | None = None,
) -> tuple[list[tuple[str, Line]], Line]:
    """The summary's rows (sorted: days in order, other groups by cost, highest first) and
    total. ``key_ids`` limits it to those callers' calls; ``known_callers`` names callers that
    are no key or identity in the store."""
    lines: dict[Group, Line] = {
        group: Line(totals) for group, totals in store.usage.summary(
            by, since, until, deployment=deployment, key_ids=key_ids
        ).items()
    }
    if by != "key" and key_ids is None:
        for provisioned in deployments:
            if deployment is not None and provisioned.name != deployment:
                continue
            for day, cost in provisioned_hours(provisioned, prices, since, until).items():
                group: Group = {"deployment": provisioned.name, "model": provisioned.model}.get(by, day)
                line = lines.setdefault(group, Line(Totals()))
                line.add(Line(Totals(), cost, True))
    names = _labels(store, by, lines, known_callers or {})
    rows: dict[str, Line] = {}
    for group, line in lines.items():
        rows.setdefault(names[group], Line(Totals())).add(line)
    total = Line(Totals())
    for line in rows.values():
        total.add(line)
    if by == "day":
        ordered = sorted(rows.items())
    else:
        ordered = sorted(rows.items(), key=lambda item: (-_cost(item[1]), item[0]))
    return ordered, total


def _labels(store: Store, by: By, lines: Mapping[Group, Line], known: Mapping[str, str]) -> dict[Group, str]:
    if by == "day":
        return {day: datetime.fromtimestamp(float(day or 0), UTC).strftime("%Y-%m-%d") for day in lines}
    names: Mapping[str, str] = {}
    if by == "key":
        names = {**known, **store.usage.caller_names(str(group) for group in lines if group)}
    return {group: NONE_GROUP if group is None else names.get(str(group), str(group)) for group in lines}


def _cost(line: Line) -> float:
    cost = line.shown()["cost"]
    return -math.inf if cost is None else float(cost)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
