"""The store behaves the same on SQLite and on PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from stockade.auth import new_key
from stockade.store import Deployment, Store, UsageRecord

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _postgres_schema_url() -> Iterator[str]:
    schema = f"stockade_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is needed for the store tests: {exc}")
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[Store]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{tmp_path / 'test.db'}"])
    else:
        urls = _postgres_schema_url()
    url = next(urls)
    store = Store(url)
    store.migrate()
    yield store
    store.close()
    next(urls, None)


def deployment(name: str = "gpt-4o") -> Deployment:
    now = time.time()
    return Deployment(name, "smollm2-135m-instruct", "local", 10, now, now)


def test_migrations_are_idempotent(store: Store) -> None:
    store.migrate()
    assert store.list_deployments() == []


def test_every_change_moves_the_revision(store: Store) -> None:
    start = store.revision()
    store.insert_deployment(deployment())
    after_insert = store.revision()
    store.update_deployment("gpt-4o", capacity=20)
    after_update = store.revision()
    store.delete_deployment("gpt-4o")
    assert start < after_insert < after_update < store.revision()


def test_deployment_names_are_unique(store: Store) -> None:
    assert store.insert_deployment(deployment())
    assert not store.insert_deployment(deployment())


def test_update_changes_only_what_is_given(store: Store) -> None:
    store.insert_deployment(deployment())
    updated = store.update_deployment("gpt-4o", capacity=30)
    assert updated is not None and updated.capacity == 30 and updated.model == "smollm2-135m-instruct"
    assert store.update_deployment("missing", capacity=1) is None


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
