"""Usage rollups: written with the records, they add up to what a scan of the records gives, on
SQLite and on PostgreSQL; summaries and spend read them, and the records only at a range's ends."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import postgres_schema_url
from stockade.store import Store, UsageRecord
from stockade.store.store import MIGRATIONS
from stockade.store.tables import usage_records, usage_rollups, usage_rollups_daily
from stockade.store.usage import (
    DAY,
    HOUR,
    LATENCY_BOUNDS_MS,
    ROLLUP_COLUMNS,
    Totals,
    latency_bucket,
    rollup_rows,
)

START = 1_800_000_000.0 - 1_800_000_000.0 % DAY  # a UTC midnight
DEPLOYMENTS = ["gpt-4o", "mini", None]
KEYS = ["k1", "k2", None]
STATUSES = [200, 200, 200, 400, 404, 429, 500, 499]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            yield f"sqlite:///{tmp_path / 'usage.db'}"
        else:
            yield stack.enter_context(postgres_schema_url())


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    store = Store(store_url)
    store.migrate()
    yield store
    store.close()


def generated(count: int, seed: int, hours: float = 80) -> list[UsageRecord]:
    """``count`` calls over ``hours`` from START, of mixed deployments, callers, statuses,
    prices (some none) and latencies."""
    chance = random.Random(seed)
    records = []
    for _ in range(count):
        deployment = chance.choice(DEPLOYMENTS)
        records.append(UsageRecord(
            ts=START + chance.random() * hours * HOUR,
            request_id=uuid.uuid4().hex,
            operation=chance.choice(["chat.completions", "embeddings"]),
            deployment=deployment,
            model=None if deployment is None else f"model-of-{deployment}",
            key_id=chance.choice(KEYS),
            status=chance.choice(STATUSES),
            prompt_tokens=chance.randrange(2000),
            completion_tokens=chance.randrange(500),
            latency_ms=round(chance.lognormvariate(4, 1.5), 3),
            cost=None if deployment == "mini" else round(chance.random() / 100, 6),
        ))
    return records


def scanned(records: Sequence[UsageRecord]) -> Totals:
    totals = Totals()
    for record in records:
        totals.calls += 1
        totals.prompt_tokens += record.prompt_tokens
        totals.completion_tokens += record.completion_tokens
        if record.cost is not None:
            totals.priced_calls += 1
            totals.cost += record.cost
        totals.errors += record.status >= 400 and record.status != 429
        totals.throttled += record.status == 429
        totals.latency[latency_bucket(record.latency_ms)] += 1
    return totals


def group_of(record: UsageRecord, by: str) -> str | int | None:
    if by == "day":
        return int(record.ts // DAY) * DAY
    return {"deployment": record.deployment, "key": record.key_id, "model": record.model}[by]


def assert_same(found: Totals, expected: Totals) -> None:
    assert (found.calls, found.prompt_tokens, found.completion_tokens, found.priced_calls,
            found.errors, found.throttled, found.latency) == (
        expected.calls, expected.prompt_tokens, expected.completion_tokens, expected.priced_calls,
        expected.errors, expected.throttled, expected.latency)
    assert found.cost == pytest.approx(expected.cost, rel=1e-9, abs=1e-12)


def write(store: Store, records: Sequence[UsageRecord], batch: int = 97) -> None:
    for start in range(0, len(records), batch):
        store.insert_usage(records[start:start + batch])


def rollups(store: Store, table: sa.Table = usage_rollups) -> list[tuple[object, ...]]:
    with store.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.select(table).order_by(*table.primary_key.columns))]


@pytest.mark.parametrize(("table", "seconds"), [(usage_rollups, HOUR), (usage_rollups_daily, DAY)])
def test_the_rollups_written_with_the_records_equal_a_rollup_of_all_of_them(
    store: Store, table: sa.Table, seconds: int,
) -> None:
    records = generated(3000, seed=1)
    write(store, records)
    found, expected = rollups(store, table), rollup_rows(records, seconds)
    cost = ROLLUP_COLUMNS.index("cost")
    assert [row[:cost] + row[cost + 1:] for row in found] == [row[:cost] + row[cost + 1:] for row in expected]
    assert [row[cost] for row in found] == pytest.approx([row[cost] for row in expected])


@pytest.mark.parametrize("by", ["deployment", "key", "model", "day"])
def test_a_summary_equals_a_scan_of_the_records_in_its_range(store: Store, by: str) -> None:
    records = generated(3000, seed=2)
    write(store, records)
    since, until = START + 5.5 * HOUR, START + 75.25 * HOUR  # partial hours and days at both ends
    inside = [r for r in records if since <= r.ts < until]
    summary = store.usage.summary(by, since, until)  # type: ignore[arg-type]
    groups = {group_of(r, by) for r in inside}
    assert set(summary) == groups
    for group in groups:
        assert_same(summary[group], scanned([r for r in inside if group_of(r, by) == group]))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    since=st.floats(START - HOUR, START + 30 * HOUR),
    length=st.floats(1, 60 * HOUR),
    deployment=st.sampled_from(["gpt-4o", "mini", None]),
    key=st.sampled_from([["k1"], ["k1", "k2"], None]),
)
def test_spend_over_any_range_equals_a_scan(
    store: Store, since: float, length: float, deployment: str | None, key: list[str] | None,
) -> None:
    if not store.usage.summary(None, 0):  # written once, for every example
        write(store, generated(2000, seed=3))
    records = [r for r, _ in store.recent_usage(10_000)]
    until = since + length
    inside = [r for r in records if since <= r.ts < until and deployment in (None, r.deployment)
              and (key is None or r.key_id in key)]
    totals = store.usage.summary(None, since, until, deployment=deployment, key_ids=key)
    assert_same(totals.get(None, Totals()), scanned(inside))
    if key is None or len(key) == 1:
        spent = store.spent(since, until, deployment=deployment, key_id=key[0] if key else None)
        assert spent == pytest.approx(sum(r.cost or 0 for r in inside), abs=1e-9)


def test_spend_without_an_end_counts_everything_since(store: Store) -> None:
    records = generated(500, seed=4)
    write(store, records)
    since = START + 10.3 * HOUR
    assert store.spent(since) == pytest.approx(sum(r.cost or 0 for r in records if r.ts >= since))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.01, 900_000), min_size=1, max_size=300), st.sampled_from([0.5, 0.95]))
def test_a_latency_percentile_falls_in_the_bucket_of_the_true_one(latencies: list[float], quantile: float) -> None:
    totals = Totals()
    for latency in latencies:
        totals.latency[latency_bucket(latency)] += 1
    true = sorted(latencies)[math.ceil(quantile * len(latencies)) - 1]  # nearest rank
    bucket = latency_bucket(true)
    lower = LATENCY_BOUNDS_MS[bucket - 1] if bucket else 0
    upper = LATENCY_BOUNDS_MS[bucket] if bucket < len(LATENCY_BOUNDS_MS) else LATENCY_BOUNDS_MS[-1]
    estimate = totals.latency_percentile(quantile)
    assert estimate is not None and lower <= estimate <= upper


def test_no_calls_have_no_latency_percentile() -> None:
    assert Totals().latency_percentile(0.5) is None


def test_the_migration_rolls_up_the_records_already_there(store_url: str) -> None:
    records = generated(1500, seed=5)
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = sa.create_engine(store_url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0009")
        old = [c.name for c in usage_records.c if c.name not in ("id", "cost")]
        connection.execute(sa.table("usage_records", *map(sa.column, old)).insert(), [
            {name: getattr(r, name) for name in old} for r in records
        ])
    engine.dispose()
    store = Store(store_url)
    try:
        store.migrate()
        unpriced = [dataclasses.replace(r, cost=None) for r in records]
        assert rollups(store) == [tuple(row) for row in rollup_rows(unpriced)]
        assert rollups(store, usage_rollups_daily) == [tuple(row) for row in rollup_rows(unpriced, DAY)]
    finally:
        store.close()
