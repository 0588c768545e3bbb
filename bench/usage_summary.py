"""Usage summaries over RECORDS generated usage records, on SQLite and on PostgreSQL.

Each store gets a fresh schema (Store.migrate), then RECORDS records generated in SQL (a recursive
CTE on SQLite, generate_series on PostgreSQL: no Python per row) spread evenly over DAYS days:
KEYS keys, each calling one of DEPLOYMENTS deployments (key k calls deployment k mod DEPLOYMENTS)
and one operation, with 2% 429s, 1% 500s, and latencies from 20 ms to 4 s. The rollups are then
built by the same backfill the migration runs (store/usage.py backfill_rollups).

Timed: what GET /management/usage/summary runs (billing.summary.summarize) for each `by`, over
the whole range less half an hour at either end (so that partial hours are read from the records),
RUNS times each; best and median. Goal (issue 17): under a second on both stores.
Run with `make bench` (or `python bench/usage_summary.py [RECORDS]`).
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

from stockade.billing.prices import Price, PriceTable
from stockade.billing.summary import summarize
from stockade.store import Store
from stockade.store.usage import DAY, HOUR, backfill_rollups

RECORDS = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
DAYS = 30
KEYS = 100
DEPLOYMENTS = 10
RUNS = 7
BYS = ("deployment", "key", "model", "day")
START = 1_798_761_600.0  # 2027-01-01T00:00:00Z
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PRICES = PriceTable([Price(f"model-{m}", 0.0, 2.5, 10.0) for m in range(DEPLOYMENTS)])


def columns(n: str, dialect: str) -> str:
    """A generated record's columns from its number ``n``, in SQL."""
    random = "abs(random())" if dialect == "sqlite" else "floor(random() * 1000000000)::bigint"
    span = DAYS * DAY
    text = "printf('%016x', {0})" if dialect == "sqlite" else "lpad(to_hex({0}), 16, '0')"
    key = f"({n} % {KEYS})"
    deployment = f"({key} % {DEPLOYMENTS})"
    prompt = f"(({random}) % 2000 + 10)"
    completion = f"(({random}) % 500)"
    return ", ".join([
        f"{START} + {n} * {span / RECORDS!r}",  # ts
        text.format(n),  # request_id
        f"CASE WHEN {key} % 7 = 0 THEN 'embeddings' ELSE 'chat.completions' END",
        f"'dep-' || {deployment}",
        f"'model-' || {deployment}",
        f"'key-' || {key}",
        f"CASE WHEN ({random}) % 100 < 2 THEN 429 WHEN ({random}) % 100 < 3 THEN 500 ELSE 200 END",
        prompt,
        completion,
        f"20 + (({random}) % 4000) * (({random}) % 1000) / 1000.0",  # latency_ms: mostly short
        f"0.00001 * (({random}) % 100)",  # cost
    ])


INSERT = ("INSERT INTO usage_records (ts, request_id, operation, deployment, model, key_id, status, "
          "prompt_tokens, completion_tokens, latency_ms, cost) ")


def generate(store: Store) -> tuple[float, float]:
    """Write the records, then their rollups; the seconds each took."""
    dialect = store.engine.dialect.name
    if dialect == "sqlite":
        numbers = f"WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {RECORDS - 1}) "
        select = f"{INSERT} {numbers} SELECT {columns('i', dialect)} FROM n"
    else:
        select = f"{INSERT} SELECT {columns('i', dialect)} FROM generate_series(0, {RECORDS - 1}) AS i"
    started = time.perf_counter()
    with store.engine.begin() as connection:
        connection.execute(sa.text(select))  # text(): escapes % for psycopg's placeholders
    written = time.perf_counter()
    with store.engine.begin() as connection:
        backfill_rollups(connection)
    with store.engine.begin() as connection:
        connection.execute(sa.text("ANALYZE"))
    return written - started, time.perf_counter() - written


@contextlib.contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as directory:
        yield f"sqlite:///{Path(directory) / 'usage.db'}"


@contextlib.contextmanager
def postgres_url() -> Iterator[str]:
    schema = f"bench_usage_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def timed(store: Store, by: str) -> tuple[float, float, int]:
    since, until = START + HOUR / 2, START + DAYS * DAY - HOUR / 2
    seconds = []
    rows = 0
    for _ in range(RUNS):
        started = time.perf_counter()
        found, _total = summarize(store, PRICES, [], by, since, until)  # type: ignore[arg-type]
        seconds.append(time.perf_counter() - started)
        rows = len(found)
    return min(seconds), statistics.median(seconds), rows


def main() -> None:
    print(f"{RECORDS:,} records over {DAYS} days, {KEYS} keys on {DEPLOYMENTS} deployments; {RUNS} runs each")
    results = []
    for name, url in (("SQLite", sqlite_url), ("PostgreSQL", postgres_url)):
        with url() as database:
            store = Store(database)
            try:
                store.migrate()
                records, rolled = generate(store)
                with store.engine.connect() as connection:
                    rollups = connection.execute(sa.text("SELECT count(*) FROM usage_rollups")).scalar_one()
                print(f"{name}: records written in {records:.0f} s, rolled up in {rolled:.0f} s: "
                      f"{rollups:,} rollup rows", flush=True)
                for by in BYS:
                    best, median, rows = timed(store, by)
                    results.append((name, by, rows, best, median))
            finally:
                store.close()
    print("\n| store | by | rows | best | median |\n|---|---|---|---|---|")
    for name, by, rows, best, median in results:
        print(f"| {name} | {by} | {rows} | {best * 1000:.0f} ms | {median * 1000:.0f} ms |")
    slowest = max(median for *_, median in results)
    print(f"\nslowest median {slowest * 1000:.0f} ms: goal (under 1 s) {'met' if slowest < 1 else 'NOT met'}")


if __name__ == "__main__":
    main()
