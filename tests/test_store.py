"""The store behaves the same on SQLite and on PostgreSQL."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import postgres_schema_url
from stockade.auth import new_key
from stockade.store import Deployment, QuotaExceeded, RecentUse, Store, UsageRecord


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'test.db'}"
        else:
            url = stack.enter_context(postgres_schema_url())
        store = Store(url)
        store.migrate()
        yield store
        store.close()


QUOTA = 100  # the default quota of models without one of their own


def deployment(name: str = "gpt-4o") -> Deployment:
    now = time.time()
    return Deployment(name, "smollm2-135m-instruct", "local", 10, now, now)


def test_migrations_are_idempotent(store: Store) -> None:
    store.migrate()
    assert store.list_deployments() == []


def test_every_change_moves_the_revision(store: Store) -> None:
    start = store.revision()
    store.insert_deployment(deployment(), QUOTA)
    after_insert = store.revision()
    store.update_deployment("gpt-4o", QUOTA, capacity=20)
    after_update = store.revision()
    store.delete_deployment("gpt-4o")
    assert start < after_insert < after_update < store.revision()


def test_deployment_names_are_unique(store: Store) -> None:
    assert store.insert_deployment(deployment(), QUOTA)
    assert not store.insert_deployment(deployment(), QUOTA)


def test_update_changes_only_what_is_given(store: Store) -> None:
    store.insert_deployment(deployment(), QUOTA)
    updated = store.update_deployment("gpt-4o", QUOTA, capacity=30)
    assert updated is not None and updated.capacity == 30 and updated.model == "smollm2-135m-instruct"
    assert store.update_deployment("missing", QUOTA, capacity=1) is None


def test_revoked_keys_are_not_active(store: Store) -> None:
    record, _ = new_key("app", kind="application", role="Cognitive Services OpenAI User")
    store.insert_key(record)
    assert [k.name for k in store.active_keys()] == ["app"]
    assert store.revoke_key(record.id)
    assert store.active_keys() == []
    again, _ = new_key("app", kind="application", role="Cognitive Services OpenAI User")
    assert store.insert_key(again)  # the name is free once the old key is revoked


def test_admin_keys_cannot_be_revoked_only_replaced(store: Store) -> None:
    record, _ = new_key("key1", kind="admin", role="admin")
    store.insert_key(record)
    assert not store.revoke_key(record.id)
    replaced = store.replace_key_secret("key1", "f" * 64, "ffff")
    assert replaced is not None and replaced.id == record.id and replaced.secret_hash == "f" * 64


def test_usage_is_written_in_batches_and_read_newest_first(store: Store) -> None:
    records = [
        UsageRecord(time.time(), f"req-{i}", "ChatCompletions_Create", "gpt-4o", "m", "k", 200, i, i, 1.5)
        for i in range(5)
    ]
    store.insert_usage(records)
    recent = store.recent_usage(limit=3)
    assert [r.request_id for r in recent] == ["req-4", "req-3", "req-2"]
    assert store.recent_usage(deployment="other") == []


def test_a_deployment_beyond_its_models_quota_is_refused(store: Store) -> None:
    store.insert_deployment(deployment("a"), QUOTA)  # capacity 10
    with pytest.raises(QuotaExceeded) as caught:
        store.insert_deployment(dataclasses.replace(deployment("b"), capacity=91), QUOTA)
    assert (caught.value.quota, caught.value.allocated, caught.value.requested) == (100, 10, 91)
    assert [d.name for d in store.list_deployments()] == ["a"]


def test_resizing_counts_the_deployments_own_capacity_as_free(store: Store) -> None:
    store.insert_deployment(deployment("a"), QUOTA)
    assert store.update_deployment("a", QUOTA, capacity=100) is not None
    with pytest.raises(QuotaExceeded):
        store.update_deployment("a", QUOTA, capacity=101)


def test_a_models_own_quota_replaces_the_default(store: Store) -> None:
    store.set_model_quota("smollm2-135m-instruct", 15)
    store.insert_deployment(deployment("a"), QUOTA)
    with pytest.raises(QuotaExceeded):
        store.insert_deployment(deployment("b"), QUOTA)
    assert store.model_quotas() == {"smollm2-135m-instruct": 15}


def test_a_quota_cannot_drop_below_what_deployments_hold(store: Store) -> None:
    store.insert_deployment(deployment("a"), QUOTA)
    with pytest.raises(QuotaExceeded):
        store.set_model_quota("smollm2-135m-instruct", 9)


def test_key_limits_are_stored_and_cleared(store: Store) -> None:
    record, _ = new_key("app", kind="application", role="Cognitive Services OpenAI User")
    store.insert_key(record)
    limited = store.set_key_limits(record.id, 6000, None)
    assert limited is not None
    assert (limited.tokens_per_minute, limited.requests_per_minute) == (6000, None)
    cleared = store.set_key_limits(record.id, None, None)
    assert cleared is not None and cleared.tokens_per_minute is None


def test_use_since_sums_tokens_and_admitted_calls_per_deployment(store: Store) -> None:
    now = time.time()

    def record(status: int, ts: float) -> UsageRecord:
        return UsageRecord(ts, "r", "ChatCompletions_Create", "a", "m", None, status, 3, 4, 1.0)

    store.insert_usage([record(200, now), record(200, now), record(429, now), record(200, now - 120)])
    assert store.use_since(now - 60) == {"a": RecentUse(14, 2)}
