"""Keys are random, stored as digests, and grant what their role and scope allow."""

from __future__ import annotations

from stockade.access import Permission, Principal, new_key, resolve_role
from stockade.access.keys import KeyRing
from stockade.access.roles import CONTRIBUTOR, OPENAI_CONTRIBUTOR, OPENAI_USER, Grant


def test_a_key_record_keeps_only_the_digest_and_a_hint() -> None:
    record, secret = new_key("app", kind="application", role=OPENAI_USER)
    assert len(secret) == 32 and secret not in record.secret_hash
    assert record.hint == secret[-4:]


def test_keys_are_unique() -> None:
    assert len({new_key("k", kind="application", role=OPENAI_USER)[1] for _ in range(100)}) == 100


def test_key_ring_knows_loaded_keys_only() -> None:
    record, secret = new_key("app", kind="application", role=OPENAI_USER, deployment="gpt-4o")
    ring = KeyRing()
    ring.load([record])
    assert ring.authenticate(secret) == Principal(record.id, "app", (Grant(OPENAI_USER, "gpt-4o"),))
    assert ring.authenticate(secret[:-1] + "x") is None
    ring.load([])
    assert ring.authenticate(secret) is None


def test_roles_follow_azure() -> None:
    user, contributor, resource_contributor = (
        Principal("i", "n", (Grant(role),)) for role in (OPENAI_USER, OPENAI_CONTRIBUTOR, CONTRIBUTOR)
    )
    assert user.allows(Permission.INFERENCE) and not user.allows(Permission.DEPLOYMENTS)
    assert contributor.allows(Permission.DEPLOYMENTS) and not contributor.allows(Permission.KEYS)
    assert resource_contributor.allows(Permission.KEYS)
    assert not resource_contributor.allows(Permission.INFERENCE)


def test_a_scoped_key_reaches_only_its_deployment() -> None:
    scoped = Principal("i", "n", (Grant(OPENAI_USER, "gpt-4o"),))
    assert scoped.allows(Permission.INFERENCE, "gpt-4o")
    assert not scoped.allows(Permission.INFERENCE, "other")


def test_a_deployment_scoped_grant_reaches_nothing_resource_wide() -> None:
    scoped = Principal("i", "n", (Grant(CONTRIBUTOR, "gpt-4o"),))
    assert scoped.allows(Permission.DEPLOYMENTS, "gpt-4o")
    assert not scoped.allows(Permission.READ)
    assert not scoped.allows(Permission.KEYS)
    assert not scoped.allows(Permission.ACCESS)


def test_a_principal_holds_the_union_of_its_grants() -> None:
    both = Principal("i", "n", (Grant(OPENAI_USER, "a"), Grant(OPENAI_USER, "b")))
    assert both.allows(Permission.INFERENCE, "a") and both.allows(Permission.INFERENCE, "b")
    assert not both.allows(Permission.INFERENCE, "c")


def test_roles_assigned_to_a_key_add_to_its_own() -> None:
    record, secret = new_key("app", kind="application", role=OPENAI_USER, deployment="a")
    ring = KeyRing()
    ring.load([record], {record.id: (Grant(OPENAI_USER, "b"),)})
    principal = ring.authenticate(secret)
    assert principal is not None and principal.allows(Permission.INFERENCE, "b")


def test_only_contributors_manage_access_and_read_the_audit_log() -> None:
    for role, allowed in ((OPENAI_USER, False), (OPENAI_CONTRIBUTOR, False), (CONTRIBUTOR, True)):
        principal = Principal("i", "n", (Grant(role),))
        assert principal.allows(Permission.ACCESS) is allowed
        assert principal.allows(Permission.AUDIT) is allowed


def test_role_aliases_resolve_and_admin_cannot_be_granted() -> None:
    assert resolve_role("openai-user") == OPENAI_USER
    assert resolve_role(CONTRIBUTOR) == CONTRIBUTOR
    assert resolve_role("admin") is None and resolve_role("owner") is None
