"""The store behaves the same on SQLite and on PostgreSQL."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from conftest import postgres_schema_url
from stockade.access import new_key
from stockade.store import (
    AuditEvent,
    Blocklist,
    BlocklistItem,
    Case,
    ContentFilter,
    Conversation,
    Deployment,
    Identity,
    InUse,
    QuotaExceeded,
    RecentUse,
    ResourceProperties,
    RoleAssignment,
    SigningKey,
    Store,
    TraceEvent,
    UsageRecord,
)
from stockade.store.tables import metadata


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


def test_a_migration_says_once_what_it_upgraded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = Store(f"sqlite:///{tmp_path / 'new.db'}")
    with caplog.at_level(logging.INFO):
        store.migrate()
        store.migrate()
    store.close()
    upgrades = [r.getMessage() for r in caplog.records if r.name == "stockade.store.store"]
    assert len(upgrades) == 1 and "from (empty) to" in upgrades[0]


def test_a_served_store_logs_none_of_alembics_own_chatter(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        Store(f"sqlite:///{tmp_path / 'new.db'}").migrate()
    assert not [r for r in caplog.records if r.name.startswith("alembic")]


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
    assert [r.request_id for r, _ in recent] == ["req-4", "req-3", "req-2"]
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


def signing_key(kid: str, created_at: float) -> SigningKey:
    return SigningKey(kid, "encrypted", {"kid": kid, "kty": "RSA"}, created_at)


def test_rotating_signing_keys_publishes_the_current_and_the_previous(store: Store) -> None:
    for index in range(3):
        store.add_signing_key(signing_key(f"k{index}", 1000.0 + index))
    keys = store.signing_keys()
    assert [k.kid for k in keys] == ["k2", "k1"]
    assert keys[0].retired_at is None and keys[1].retired_at == 1002.0
    assert keys[0].public_jwk == {"kid": "k2", "kty": "RSA"}


def test_a_first_signing_key_is_added_only_once(store: Store) -> None:
    assert store.add_signing_key(signing_key("a", 1.0), only_if_none=True)
    assert not store.add_signing_key(signing_key("b", 2.0), only_if_none=True)
    assert [k.kid for k in store.signing_keys()] == ["a"]


def test_the_tenant_id_is_chosen_once(store: Store) -> None:
    assert store.tenant_id() == store.tenant_id()


def test_resource_properties_round_trip(store: Store) -> None:
    assert store.resource_properties() == ResourceProperties()
    wanted = ResourceProperties(True, "Deny", ("10.0.0.0/8", "2001:db8::/32"))
    store.set_resource_properties(wanted)
    assert store.resource_properties() == wanted


def identity(name: str, kind: str = "managed") -> Identity:
    return Identity(name, kind, name, f"client-{name}", f"object-{name}", f"hash-{name}", "hint", 1.0, 1.0)


def test_identity_names_are_unique_per_kind(store: Store) -> None:
    assert store.insert_identity(identity("app"))
    assert not store.insert_identity(dataclasses.replace(identity("app"), id="other", client_id="c2", object_id="o2", secret_hash="h2"))


def test_deleting_an_identity_removes_its_role_assignments(store: Store) -> None:
    store.insert_identity(identity("app"))
    store.insert_role_assignment(RoleAssignment("r1", "reader", None, "tenant", "object-app", None, 1.0))
    store.insert_role_assignment(RoleAssignment("r2", "reader", None, "tenant", "someone-else", None, 1.0))
    assert store.delete_identity("app", "tenant")
    assert [a.id for a in store.list_role_assignments()] == ["r2"]


def test_an_identical_role_assignment_is_not_duplicated(store: Store) -> None:
    first = store.insert_role_assignment(RoleAssignment("r1", "reader", "gpt-4o", None, None, "key", 1.0))
    again = store.insert_role_assignment(RoleAssignment("r2", "reader", "gpt-4o", None, None, "key", 2.0))
    assert again == first and len(store.list_role_assignments()) == 1


def test_a_rotated_identity_secret_replaces_the_old_digest(store: Store) -> None:
    store.insert_identity(identity("app"))
    updated = store.replace_identity_secret("app", "new-hash", "wxyz")
    assert updated is not None and updated.secret_hash == "new-hash"
    assert [i.secret_hash for i in store.list_identities()] == ["new-hash"]


def test_audit_events_are_listed_newest_first_and_filtered_by_action(store: Store) -> None:
    for index, action in enumerate(["roles.assign", "keys.create", "roles.remove"]):
        store.insert_audit(AuditEvent(float(index), "id", "who", "127.0.0.1", action, None, 201))
    assert [e.action for e in store.list_audit()] == ["roles.remove", "keys.create", "roles.assign"]
    assert [e.action for e in store.list_audit(action="roles.")] == ["roles.remove", "roles.assign"]


def test_usage_records_name_token_principals_by_their_object_id(store: Store) -> None:
    object_id = "f56f7d39-b458-4388-b8af-cec57cc30e63"  # longer than a key id
    store.insert_usage([UsageRecord(1.0, "r", "ChatCompletions_Create", "a", "m", object_id, 200, 1, 1, 1.0)])
    assert store.recent_usage()[0][0].key_id == object_id


def test_usage_records_come_with_the_name_of_the_key_or_identity_that_called(store: Store) -> None:
    key, _ = new_key("nightly", kind="application", role="Cognitive Services OpenAI User")
    store.insert_key(key)
    store.revoke_key(key.id)  # the name of a revoked key's calls is still known
    store.insert_identity(identity("batch"))
    callers = [key.id, "object-batch", "unknown"]
    store.insert_usage([
        UsageRecord(float(i), f"r{i}", "ChatCompletions_Create", "a", "m", caller, 200, 1, 1, 1.0)
        for i, caller in enumerate(callers)
    ])
    assert [name for _, name in store.recent_usage()] == [None, "batch", "nightly"]


def test_the_migrations_build_the_schema_the_code_declares(store: Store) -> None:
    with store.engine.connect() as connection:
        # SQLite ignores declared string lengths, so 0003 leaves them there as they were.
        options = {"compare_type": connection.dialect.name != "sqlite"}
        drift = compare_metadata(MigrationContext.configure(connection, opts=options), metadata)
    assert drift == []


def test_a_conversations_trace_and_messages_read_as_of_the_turn_its_row_was_read_at(store: Store) -> None:
    now = time.time()
    started = Conversation("c1", "baa", "v1", "chat", "embed", "case1", "p", {}, 0, "open", now, now)
    store.insert_conversation(started, Case("case1", "c1", "baa", "open", now))
    assert store.save_turn(started, {}, "open", [TraceEvent(now, 1, "step", "1", {})], [("customer", "first")])
    read = store.get_conversation("c1")
    assert read is not None and read.turn == 1

    assert store.save_turn(read, {}, "open", [TraceEvent(now, 2, "step", "2", {})], [("customer", "second")])

    assert [event.turn for event in store.trace("c1", read.turn)] == [1]
    assert store.conversation_messages("c1", read.turn) == [("customer", "first")]
    assert [event.turn for event in store.trace("c1", read.turn + 1)] == [1, 2]


def test_the_embedded_store_and_its_directory_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    os.umask(0o022)  # the usual umask, under which files are world-readable by default
    data_dir = tmp_path / "fresh" / "data"
    store = Store(f"sqlite:///{data_dir}/stockade.db")
    store.migrate()
    store.insert_deployment(deployment(), QUOTA)
    store.close()
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    written = [path for path in data_dir.iterdir() if path.name.startswith("stockade.db")]
    assert written and {stat.S_IMODE(path.stat().st_mode) for path in written} == {0o600}


# -- content filter policies and blocklists -------------------------------------------------------


def test_a_content_filter_policy_is_stored_created_then_replaced(store: Store) -> None:
    policy = ContentFilter("strict", {"profanity": True, "blocklists": []}, 1.0, 1.0)
    assert store.put_content_filter(policy, create=True)
    assert not store.put_content_filter(policy, create=True)
    assert store.put_content_filter(dataclasses.replace(policy, config={"profanity": False}, updated_at=2.0), create=False)
    assert store.list_content_filters() == [ContentFilter("strict", {"profanity": False}, 1.0, 2.0)]
    assert not store.put_content_filter(ContentFilter("missing", {}, 1.0, 1.0), create=False)


def test_a_deployments_policy_is_kept_and_keeps_the_policy_from_deletion(store: Store) -> None:
    store.put_content_filter(ContentFilter("strict", {}, 1.0, 1.0), create=True)
    store.insert_deployment(deployment(), QUOTA)
    assert store.get_deployment("gpt-4o").content_filter is None  # type: ignore[union-attr]
    store.update_deployment("gpt-4o", QUOTA, content_filter="strict")
    assert store.get_deployment("gpt-4o").content_filter == "strict"  # type: ignore[union-attr]
    with pytest.raises(InUse) as raised:
        store.delete_content_filter("strict")
    assert raised.value.users == ["gpt-4o"]
    store.update_deployment("gpt-4o", QUOTA, content_filter=None)
    assert store.delete_content_filter("strict")


def test_a_blocklist_keeps_its_items_in_order_up_to_its_limit(store: Store) -> None:
    assert store.insert_blocklist(Blocklist("secrets", "names", 1.0))
    assert not store.insert_blocklist(Blocklist("secrets", "again", 2.0))
    first, second = BlocklistItem("i1", "exact", "alpha", 1.0), BlocklistItem("i2", "regex", r"b\d+", 2.0)
    assert store.insert_blocklist_item("secrets", first, limit=2)
    assert store.insert_blocklist_item("secrets", second, limit=2)
    assert store.insert_blocklist_item("secrets", BlocklistItem("i3", "exact", "c", 3.0), limit=2) is False
    assert store.insert_blocklist_item("missing", first, limit=2) is None
    assert store.list_blocklists() == [Blocklist("secrets", "names", 1.0, (first, second))]
    assert store.delete_blocklist_item("secrets", "i1")
    assert not store.delete_blocklist_item("secrets", "i1")


def test_a_blocklist_a_policy_uses_cannot_be_deleted(store: Store) -> None:
    store.insert_blocklist(Blocklist("secrets", "", 1.0))
    store.insert_blocklist_item("secrets", BlocklistItem("i1", "exact", "alpha", 1.0), limit=10)
    store.put_content_filter(ContentFilter("strict", {"blocklists": ["secrets"]}, 1.0, 1.0), create=True)
    with pytest.raises(InUse):
        store.delete_blocklist("secrets")
    store.put_content_filter(ContentFilter("strict", {"blocklists": []}, 1.0, 2.0), create=False)
    assert store.delete_blocklist("secrets")
    assert store.list_blocklists() == []
    assert not store.delete_blocklist("secrets")


def test_usage_records_keep_the_content_filter_decisions(store: Store) -> None:
    record = UsageRecord(1.0, "r", "ChatCompletions_Create", "a", "m", None, 400, 1, 0, 1.0,
                         "strict/prompt/profanity/block")
    store.insert_usage([record])
    assert store.recent_usage(1)[0][0] == record
