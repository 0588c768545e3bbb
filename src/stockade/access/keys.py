"""API keys: generated with ``secrets``, stored as SHA-256 digests, matched in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from stockade.access.roles import ADMIN, OPENAI_USER, Grant, Permission
from stockade.quotas.limits import Limit
from stockade.store.records import ApiKey

ADMIN_KEY_NAMES = ("key1", "key2")


def generate_secret() -> str:
    # 128 random bits as 32 hex characters, the shape of an Azure resource key. Keys this random
    # need no slow password hash: a SHA-256 digest cannot be reversed or searched.
    return secrets.token_hex(16)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def new_key(
    name: str,
    *,
    kind: str,
    role: str,
    deployment: str | None = None,
    limit: Limit | None = None,
) -> tuple[ApiKey, str]:
    """A key record and its secret; the secret is returned once and never stored."""
    secret = generate_secret()
    record = ApiKey(
        id=uuid.uuid4().hex[:16],
        name=name,
        kind=kind,
        role=role,
        deployment=deployment,
        secret_hash=digest(secret),
        hint=secret[-4:],
        created_at=time.time(),
        tokens_per_minute=limit.tokens_per_minute if limit else None,
        requests_per_minute=limit.requests_per_minute if limit else None,
    )
    return record, secret


ENTRA = "entra"  # Principal.kind of a token's holder


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an API key, or the holder of a token (``kind`` ENTRA), with the roles
    they hold. Hashable, so that rate-limit buckets can be cached per principal."""

    id: str
    name: str
    grants: tuple[Grant, ...]
    limit: Limit | None = None  # an application key's own TPM/RPM limit
    kind: str = "key"

    def allows(self, permission: Permission, deployment: str | None = None) -> bool:
        return any(grant.allows(permission, deployment) for grant in self.grants)


# Used by the command line acting on a local data directory: whoever can read the store's files
# already holds every secret in it, so they act as the resource owner.
LOCAL_OPERATOR = Principal(id="local", name="local operator", grants=(Grant(ADMIN),))

# The routines' agents calling models through the API in process: they may call any deployment
# and nothing else, and their calls are metered under this id.
ROUTINES_AGENT = Principal(id="routines", name="routines agent", grants=(Grant(OPENAI_USER),))


class KeyRing:
    """The active keys' principals, indexed by digest, built and swapped whole when the store
    changes, so that a request only looks one up."""

    def __init__(self) -> None:
        self._by_digest: dict[str, tuple[str, Principal]] = {}
        self._by_id: dict[str, Principal] = {}

    def load(self, keys: list[ApiKey], assigned: Mapping[str, tuple[Grant, ...]] | None = None) -> None:
        """``assigned`` maps key ids to the roles assigned to them on top of their own."""
        assigned = assigned or {}
        self._by_digest = {
            key.secret_hash: (key.secret_hash, _principal(key, assigned.get(key.id, ())))
            for key in keys
        }
        self._by_id = {principal.id: principal for _, principal in self._by_digest.values()}

    def principal(self, key_id: str) -> Principal | None:
        """The active key ``key_id``'s principal as it is now (its roles may have changed)."""
        return self._by_id.get(key_id)

    def authenticate(self, secret: str) -> Principal | None:
        presented = digest(secret)
        found = self._by_digest.get(presented)
        # The dictionary finds a candidate by digest; the final comparison is constant-time so the
        # check itself reveals nothing about how much of a digest matched.
        if found is None or not hmac.compare_digest(found[0], presented):
            return None
        return found[1]


def _principal(key: ApiKey, assigned: tuple[Grant, ...]) -> Principal:
    limit = None
    if key.tokens_per_minute is not None or key.requests_per_minute is not None:
        limit = Limit(key.tokens_per_minute, key.requests_per_minute)
    return Principal(key.id, key.name, (Grant(key.role, key.deployment), *assigned), limit)
