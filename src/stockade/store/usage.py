"""SQL for usage beyond the records themselves: the hourly and daily rollups written with them,
the summaries and spend read from those, and the stored prices.

A rollup row holds one hour (or UTC day) of one (deployment, caller, model, operation): counts,
tokens, cost and a latency histogram. A summary reads the whole days of its range from the daily
rollups, the whole hours around them from the hourly ones, and only the partial hours at either
end from the records, so that its cost grows with the days and groups in the range, not with the
calls.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from stockade.billing.prices import Price
from stockade.store.records import UsageRecord
from stockade.store.tables import (
    LATENCY_BUCKETS,
    api_keys,
    identities,
    prices,
    usage_records,
    usage_rollups,
    usage_rollups_daily,
)

HOUR = 3600
DAY = 86400
# Upper bounds of the latency buckets in milliseconds (1-2-5 steps); the last bucket holds what is
# above the last bound. A percentile is interpolated within its bucket, so its error is at most
# that bucket's width: under 60% of the true value from 2 ms up.
LATENCY_BOUNDS_MS = (
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000,
    200_000, 500_000,
)
assert len(LATENCY_BOUNDS_MS) + 1 == LATENCY_BUCKETS
LATENCY_COLUMNS = tuple(f"latency_{i:02d}" for i in range(LATENCY_BUCKETS))
GROUP_COLUMNS = ("deployment", "key_id", "model", "operation")
SUM_COLUMNS = (
    "calls", "prompt_tokens", "completion_tokens", "priced_calls", "cost", "errors", "throttled",
    *LATENCY_COLUMNS,
)
ROLLUP_COLUMNS = ("hour", *GROUP_COLUMNS, *SUM_COLUMNS)  # the hourly table's; the daily's has day
FIRST_LATENCY = SUM_COLUMNS.index(LATENCY_COLUMNS[0])

By = Literal["deployment", "key", "model", "day"]
BY_COLUMN = {"deployment": "deployment", "key": "key_id", "model": "model"}
Group = str | int | None  # a deployment, caller or model (None: the call had none), or a day's start

Bump = Callable[[sa.Connection], None]


@dataclass(frozen=True, slots=True)
class Rollup:
    table: sa.Table
    period: str  # the column of the period's start
    seconds: int

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.period, *GROUP_COLUMNS, *SUM_COLUMNS)


HOURLY = Rollup(usage_rollups, "hour", HOUR)
DAILY = Rollup(usage_rollups_daily, "day", DAY)


def latency_bucket(latency_ms: float) -> int:
    return bisect.bisect_left(LATENCY_BOUNDS_MS, latency_ms)


@dataclass(slots=True)
class Totals:
    """What a set of calls added up to."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    priced_calls: int = 0  # of them, those whose cost is known
    cost: float = 0.0
    errors: int = 0
    throttled: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * LATENCY_BUCKETS)

    @classmethod
    def of_row(cls, sums: Sequence[Any]) -> Totals:
        """From the sums in SUM_COLUMNS' order."""
        head = [int(value or 0) for value in sums[:FIRST_LATENCY]]
        return cls(
            head[0], head[1], head[2], head[3], float(sums[4] or 0.0), head[5], head[6],
            [int(value or 0) for value in sums[FIRST_LATENCY:]],
        )

    def add(self, other: Totals) -> None:
        self.calls += other.calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.priced_calls += other.priced_calls
        self.cost += other.cost
        self.errors += other.errors
        self.throttled += other.throttled
        self.latency = [a + b for a, b in zip(self.latency, other.latency, strict=True)]

    def latency_percentile(self, quantile: float) -> float | None:
        """The latency below which ``quantile`` of the calls fell, interpolated linearly within
        its bucket; None without calls. Above the last bound, that bound."""
        counted = sum(self.latency)
        if not counted:
            return None
        rank = quantile * counted
        below = 0
        for index, count in enumerate(self.latency):
            if count and below + count >= rank:
                if index == len(LATENCY_BOUNDS_MS):
                    return float(LATENCY_BOUNDS_MS[-1])
                lower = LATENCY_BOUNDS_MS[index - 1] if index else 0
                upper = LATENCY_BOUNDS_MS[index]
                return lower + (upper - lower) * max(rank - below, 0) / count
            below += count
        return float(LATENCY_BOUNDS_MS[-1])


def rollup_rows(records: Iterable[UsageRecord], seconds: int = HOUR) -> list[tuple[Any, ...]]:
    """``records`` summed per period of ``seconds`` and group, one row per group in
    ROLLUP_COLUMNS' order, sorted (so that concurrent writers take the rows' locks in one order)."""
    groups: dict[tuple[int, str, str, str, str], list[Any]] = {}
    first_latency = FIRST_LATENCY
    for record in records:
        key = (
            int(record.ts // seconds) * seconds, record.deployment or "", record.key_id or "",
            record.model or "", record.operation,
        )
        sums = groups.get(key)
        if sums is None:
            sums = groups[key] = [0, 0, 0, 0, 0.0, 0, 0, *([0] * LATENCY_BUCKETS)]
        sums[0] += 1
        sums[1] += record.prompt_tokens
        sums[2] += record.completion_tokens
        if record.cost is not None:
            sums[3] += 1
            sums[4] += record.cost
        if record.status == 429:
            sums[6] += 1
        elif record.status >= 400:
            sums[5] += 1
        sums[first_latency + bisect.bisect_left(LATENCY_BOUNDS_MS, record.latency_ms)] += 1
    return [(*key, *sums) for key, sums in sorted(groups.items())]


def _floor(column: sa.ColumnElement[Any], seconds: int, dialect: str) -> sa.ColumnElement[Any]:
    """``column`` (seconds since the epoch) down to a multiple of ``seconds``, as an integer."""
    if dialect == "postgresql":  # its casts round; floor first
        return sa.cast(sa.func.floor(column / seconds), sa.BigInteger) * seconds
    return sa.cast(column / seconds, sa.Integer) * seconds  # SQLite's casts truncate; ts > 0


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def record_sums() -> list[sa.ColumnElement[Any]]:
    """Usage records summed as the rollups sum them, in SUM_COLUMNS' order."""
    latency = usage_records.c.latency_ms
    status = usage_records.c.status
    buckets = []
    for index in range(LATENCY_BUCKETS):
        bounds = []
        if index < len(LATENCY_BOUNDS_MS):
            bounds.append(latency <= LATENCY_BOUNDS_MS[index])
        if index:
            bounds.append(latency > LATENCY_BOUNDS_MS[index - 1])
        buckets.append(_count(sa.and_(*bounds)))
    return [
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(usage_records.c.prompt_tokens), 0),
        sa.func.coalesce(sa.func.sum(usage_records.c.completion_tokens), 0),
        sa.func.count(usage_records.c.cost),
        sa.func.coalesce(sa.func.sum(usage_records.c.cost), 0.0),
        _count(sa.and_(status >= 400, status != 429)),
        _count(status == 429),
        *buckets,
    ]


def record_groups(dialect: str) -> list[sa.ColumnElement[Any]]:
    """Usage records' hourly rollup group, in ROLLUP_COLUMNS' order."""
    return [
        _floor(usage_records.c.ts, HOUR, dialect),
        sa.func.coalesce(usage_records.c.deployment, ""),
        sa.func.coalesce(usage_records.c.key_id, ""),
        sa.func.coalesce(usage_records.c.model, ""),
        usage_records.c.operation,
    ]


def backfill_rollups(connection: sa.Connection) -> None:
    """Roll up every usage record (the migration that adds the rollups runs this once): hours
    from the records, days from the hours."""
    groups = record_groups(connection.dialect.name)
    select = sa.select(*groups, *record_sums()).group_by(*groups)
    connection.execute(usage_rollups.insert().from_select(list(HOURLY.columns), select))
    hourly = usage_rollups.c
    day = hourly.hour - hourly.hour % DAY
    by_day = [day, *(hourly[name] for name in GROUP_COLUMNS)]
    select = sa.select(*by_day, *(sa.func.sum(hourly[name]) for name in SUM_COLUMNS)).group_by(*by_day)
    connection.execute(usage_rollups_daily.insert().from_select(list(DAILY.columns), select))


class UsageStore:
    def __init__(self, engine: sa.Engine, bump: Bump) -> None:
        self.engine = engine
        self._bump = bump  # Store's: a price change is a change every replica re-reads
        self._upserts: dict[str, tuple[str, Sequence[str], bool]] = {}

    # -- rollups ---------------------------------------------------------------------------------

    def add_rollups(self, connection: sa.Connection, records: Sequence[UsageRecord]) -> None:
        """Add ``records`` to their hours' and days' rollups, in the caller's transaction: one
        row per group, straight to the driver's executemany, as the records are."""
        for rollup in (HOURLY, DAILY):
            rows: list[Any] = rollup_rows(records, rollup.seconds)
            sql, order, positional = self._upserts.get(rollup.period) or self._compile_upsert(rollup)
            columns = rollup.columns
            if not positional:
                rows = [dict(zip(columns, row, strict=True)) for row in rows]
            elif tuple(order) != columns:
                rows = [tuple(row[columns.index(name)] for name in order) for row in rows]
            connection.exec_driver_sql(sql, rows)

    def _compile_upsert(self, rollup: Rollup) -> tuple[str, Sequence[str], bool]:
        dialect = self.engine.dialect
        table = rollup.table
        insert = (postgresql.insert if dialect.name == "postgresql" else sqlite.insert)(table)
        statement = insert.on_conflict_do_update(
            index_elements=[table.c[name] for name in (rollup.period, *GROUP_COLUMNS)],
            set_={name: table.c[name] + insert.excluded[name] for name in SUM_COLUMNS},
        )
        compiled = statement.compile(dialect=dialect, column_keys=list(rollup.columns))
        self._upserts[rollup.period] = (str(compiled), compiled.positiontup or list(rollup.columns), compiled.positional)
        return self._upserts[rollup.period]

    # -- summaries -------------------------------------------------------------------------------

    def summary(
        self, by: By | None, since: float, until: float | None = None, *,
        deployment: str | None = None, key_ids: Sequence[str] | None = None,
    ) -> dict[Group, Totals]:
        """Totals of the calls made in [since, until) per ``by`` group (one group, None, if
        ``by`` is None), of one deployment and of some callers if given. A caller's group is its
        id; a day's, the start of the UTC day."""
        dialect = self.engine.dialect.name
        first_hour, first_day = math.ceil(since / HOUR) * HOUR, math.ceil(since / DAY) * DAY
        end = end_hour = end_day = math.inf
        if until is not None:
            end, end_hour, end_day = until, math.floor(until / HOUR) * HOUR, math.floor(until / DAY) * DAY
        spans: list[tuple[Rollup | None, float, float]]  # what reads each part of the range
        if first_hour >= end_hour:  # no whole hour: the records only
            spans = [(None, since, end)]
        elif first_day >= end_day:  # no whole day
            spans = [(None, since, first_hour), (HOURLY, first_hour, end_hour), (None, end_hour, end)]
        else:
            spans = [(None, since, first_hour), (HOURLY, first_hour, first_day), (DAILY, first_day, end_day),
                     (HOURLY, end_day, end_hour), (None, end_hour, end)]
        parts = [
            self._from_records(by, dialect, start, finish, deployment, key_ids) if rollup is None
            else self._from_rollups(rollup, by, start, finish, deployment, key_ids)
            for rollup, start, finish in spans if start < finish
        ]
        totals: dict[Group, Totals] = {}
        with self.engine.connect() as connection:
            for query in parts:
                for row in connection.execute(query):
                    group = None if by is None else _group_value(row[0])
                    sums = Totals.of_row(row[0 if by is None else 1:])
                    if sums.calls:
                        totals.setdefault(group, Totals()).add(sums)
        return totals

    @staticmethod
    def _from_rollups(
        rollup: Rollup, by: By | None, since: float, until: float, deployment: str | None,
        key_ids: Sequence[str] | None,
    ) -> sa.Select[Any]:
        table = rollup.table.c
        start = table[rollup.period]
        group: list[sa.ColumnElement[Any]] = []
        if by == "day":
            group = [start if rollup is DAILY else start - start % DAY]
        elif by is not None:
            group = [table[BY_COLUMN[by]]]
        query = sa.select(*group, *(sa.func.sum(table[name]) for name in SUM_COLUMNS)).where(start >= since)
        if until != math.inf:
            query = query.where(start < until)
        if deployment is not None:
            query = query.where(table.deployment == deployment)
        if key_ids is not None:
            query = query.where(table.key_id.in_(key_ids))
        return query.group_by(*group) if group else query

    @staticmethod
    def _from_records(
        by: By | None, dialect: str, since: float, until: float, deployment: str | None,
        key_ids: Sequence[str] | None,
    ) -> sa.Select[Any]:
        table = usage_records.c
        group: list[sa.ColumnElement[Any]] = []
        if by == "day":
            group = [_floor(table.ts, DAY, dialect)]
        elif by is not None:
            group = [sa.func.coalesce(table[BY_COLUMN[by]], "")]
        query = sa.select(*group, *record_sums()).where(table.ts >= since)
        if until != math.inf:
            query = query.where(table.ts < until)
        if deployment is not None:
            query = query.where(table.deployment == deployment)
        if key_ids is not None:
            query = query.where(table.key_id.in_(key_ids))
        return query.group_by(*group) if group else query

    def spent(
        self, since: float, until: float | None = None, *, deployment: str | None = None,
        key_id: str | None = None,
    ) -> float:
        totals = self.summary(
            None, since, until, deployment=deployment, key_ids=None if key_id is None else [key_id]
        )
        return totals[None].cost if None in totals else 0.0

    # -- callers' names --------------------------------------------------------------------------

    def caller_names(self, ids: Iterable[str]) -> dict[str, str]:
        """The names of the keys (revoked ones' too) and identities among ``ids``."""
        wanted = list(ids)
        with self.engine.connect() as connection:
            # Oldest first: a name taken again by a newer key shows that one's.
            keys = connection.execute(
                sa.select(api_keys.c.id, api_keys.c.name)
                .where(api_keys.c.id.in_(wanted)).order_by(api_keys.c.created_at)
            ).all()
            principals = connection.execute(
                sa.select(identities.c.object_id, identities.c.name).where(identities.c.object_id.in_(wanted))
            ).all()
        return {caller: name for caller, name in [*principals, *keys]}

    def caller_ids(self, name: str) -> list[str]:
        """The ids that usage records carry for the keys (revoked ones' too) and identities
        named, or with the id, ``name``."""
        with self.engine.connect() as connection:
            keys = connection.scalars(
                sa.select(api_keys.c.id).where(sa.or_(api_keys.c.name == name, api_keys.c.id == name))
            ).all()
            principals = connection.scalars(
                sa.select(identities.c.object_id).where(
                    sa.or_(identities.c.name == name, identities.c.object_id == name, identities.c.id == name)
                )
            ).all()
        return sorted({*keys, *principals})

    # -- prices ----------------------------------------------------------------------------------

    def list_prices(self) -> list[Price]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(prices).order_by(prices.c.model, prices.c.effective_from)
            )
            return [Price(**{k: v for k, v in row._mapping.items() if k != "created_at"}) for row in rows]

    def put_price(self, price: Price, created_at: float) -> None:
        """Store ``price``, replacing the one of the same model and effective_from if any."""
        with self.engine.begin() as connection:
            self._bump(connection)
            connection.execute(
                prices.delete().where(
                    prices.c.model == price.model, prices.c.effective_from == price.effective_from
                )
            )
            connection.execute(prices.insert().values(**dataclasses.asdict(price), created_at=created_at))

    def delete_price(self, model: str, effective_from: float) -> bool:
        with self.engine.begin() as connection:
            deleted = connection.execute(
                prices.delete().where(prices.c.model == model, prices.c.effective_from == effective_from)
            )
            if deleted.rowcount:
                self._bump(connection)
        return bool(deleted.rowcount)


def _group_value(value: Any) -> Group:
    if isinstance(value, str):
        return value or None
    return int(value)
