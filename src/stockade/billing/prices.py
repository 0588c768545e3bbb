"""Prices per model, with dated changes, and the cost of a call under them.

A model's price changes by a new row with a later ``effective_from``; a call is priced by the row
in effect when it was made, so past usage keeps the price it had.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

STANDARD = "Standard"  # the sku billed per token (Azure's names)
PROVISIONED = "ProvisionedManaged"  # the sku billed per PTU-hour: its calls cost no tokens
PER_MILLION = 1_000_000
LATEST = datetime(9999, 12, 31, tzinfo=UTC).timestamp()  # the last time ISO 8601 writes


@dataclass(frozen=True, slots=True)
class Price:
    model: str
    effective_from: float  # seconds since the epoch
    input_per_million: float  # per million prompt tokens, in billing.currency
    output_per_million: float  # per million completion tokens
    batch_discount: float = 0.5  # the share taken off for batch lines (Azure's: 50%)
    hourly_rate: float | None = None  # per provisioned unit (PTU) and hour, for provisioned deployments


class PriceTable:
    """Every model's prices, held in memory for the request path."""

    def __init__(self, prices: Iterable[Price] = ()) -> None:
        by_model: dict[str, list[Price]] = {}
        for price in sorted(prices, key=lambda p: (p.model, p.effective_from)):
            by_model.setdefault(price.model, []).append(price)
        self._prices = by_model
        self._starts = {model: [p.effective_from for p in rows] for model, rows in by_model.items()}

    def price(self, model: str | None, at: float) -> Price | None:
        """The price in effect for ``model`` at ``at``; None if it had none then."""
        if model is None or model not in self._prices:
            return None
        index = bisect.bisect_right(self._starts[model], at) - 1
        return self._prices[model][index] if index >= 0 else None

    def cost(
        self,
        model: str | None,
        prompt_tokens: int,
        completion_tokens: int,
        at: float,
        *,
        batch: bool = False,
        sku: str = STANDARD,
    ) -> float | None:
        """What a call costs in billing.currency; None if its model had no price when it was made.
        A provisioned deployment's calls cost nothing per token: its hours are billed instead."""
        price = self.price(model, at)
        if price is None:
            return None
        if sku == PROVISIONED:
            return 0.0
        cost = (prompt_tokens * price.input_per_million + completion_tokens * price.output_per_million) / PER_MILLION
        return cost * (1 - price.batch_discount) if batch else cost

    def __iter__(self) -> Iterator[Price]:
        for rows in self._prices.values():
            yield from rows


def combined(configured: Iterable[Price], stored: Iterable[Price]) -> PriceTable:
    """The prices of stockade.toml and those set through the management API together: a stored
    row replaces the configured one of the same model and effective_from, and every other row of
    either applies from its own date."""
    rows = {(price.model, price.effective_from): price for price in configured}
    rows.update({(price.model, price.effective_from): price for price in stored})
    return PriceTable(rows.values())


def instant(value: str | float | date) -> float:
    """Seconds since the epoch from an ISO 8601 date or time (UTC unless it says otherwise), a
    TOML date, or seconds since the epoch. ValueError says what is accepted."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
        if not 0 <= seconds < LATEST:
            raise ValueError(f"{value} is not a time between 1970 and 9999 in seconds since the epoch")
        return seconds
    else:
        try:
            return instant(float(value))
        except ValueError:
            pass
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise ValueError(
                f"{str(value)[:40]!r} is not a date or time: write ISO 8601 (2026-12-01 or "
                "2026-12-01T10:00:00Z) or seconds since the epoch"
            ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
