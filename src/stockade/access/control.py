"""Who may call, and from where: keys, tokens, role assignments, network rules, local auth.

``Access`` answers the request path from memory (``authenticate``, ``client_address``,
``network.allows``) and is reloaded from the store whenever its revision moves; its management
operations write to the store.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from stockade.access.failures import FailedAttempts
from stockade.access.issuer import (
    MANAGED,
    SERVICE_PRINCIPAL,
    IssuedToken,
    Signer,
    TokenService,
)
from stockade.access.keys import (
    ENTRA,
    LOCAL_OPERATOR,
    ROUTINES_AGENT,
    KeyRing,
    Principal,
    digest,
    generate_secret,
)
from stockade.access.network import (
    ALLOW,
    DENY,
    ClientAddress,
    IPAddress,
    NetworkRules,
    parse_network,
)
from stockade.access.roles import Grant, resolve_role
from stockade.access.signing import new_signing_key, passphrase, private_key
from stockade.access.tokens import TokenRejected, TokenValidator, TrustedIssuer, WrongTenant
from stockade.config import IssuerSettings, Settings
from stockade.errors import (
    InvalidRequest,
    InvalidToken,
    LocalAuthDisabled,
    NotFound,
    ServiceError,
    TenantMismatch,
    TooManyRequests,
    Unauthorized,
)
from stockade.names import NAME
from stockade.store import (
    ApiKey,
    AuditEvent,
    Identity,
    ResourceProperties,
    RoleAssignment,
    SigningKey,
    Store,
)
from stockade.telemetry import metrics

log = logging.getLogger(__name__)
# Callers that are no key or identity in the store, by id.
BUILT_IN = {principal.id: principal for principal in (LOCAL_OPERATOR, ROUTINES_AGENT)}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the request path needs, read from the store in one go."""

    keys: list[ApiKey]
    assignments: list[RoleAssignment]
    identities: list[Identity]
    signing_keys: list[SigningKey]
    signer: Signer | None  # the current signing key, decrypted
    properties: ResourceProperties


class Access:
    def __init__(
        self, settings: Settings, store: Store, changed: Callable[[], Awaitable[None]]
    ) -> None:
        self.settings = settings
        self.store = store
        self._changed = changed  # reloads this from the store after a management change
        auth = settings.auth
        self.keys = KeyRing()
        self.public_url = settings.public_url  # once: it may need a DNS lookup
        self.tokens = TokenService(self.public_url, auth.audiences, auth.token_lifetime_seconds)
        self.validator = TokenValidator(
            [_configured_issuer(issuer) for issuer in auth.issuers],
            leeway_seconds=auth.clock_skew_seconds,
        )
        self.addresses = ClientAddress(auth.trusted_proxies)
        self.failures = FailedAttempts(auth.failed_attempts_per_minute)
        self.properties = ResourceProperties()
        self.network = NetworkRules()
        self._token_principals: dict[tuple[str, str], Principal] = {}
        self._passphrase = passphrase(
            auth.secret_key.get_secret_value() if auth.secret_key else None, settings.data_dir
        )

    # -- loading ----------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Read the tenant, or on first start choose it and make a signing key (blocking)."""
        self.tokens.tenant_id = self.store.tenant_id()
        if not self.store.signing_keys():
            self.store.add_signing_key(new_signing_key(self._passphrase), only_if_none=True)

    def read(self) -> Snapshot:
        """Read from the store (blocking: call it in a thread)."""
        signing_keys = self.store.signing_keys()
        return Snapshot(
            self.store.active_keys(),
            self.store.list_role_assignments(),
            self.store.list_identities(),
            signing_keys,
            self._decrypt(signing_keys[0]) if signing_keys else None,
            self.store.resource_properties(),
        )

    def _decrypt(self, current: SigningKey) -> Signer | None:
        # Decryption derives a key from the passphrase (about 0.1 s): done once per signing key.
        loaded = self.tokens.signer
        if loaded is not None and loaded[0].kid == current.kid:
            return loaded
        try:
            return current, private_key(current, self._passphrase)
        except ValueError:
            log.error(
                "the token service's signing key %s cannot be decrypted with this server's "
                "auth.secret_key: replicas sharing a store must share it; until they do, tokens "
                "cannot be issued here", current.kid,
            )
            return None

    def load(self, snapshot: Snapshot) -> None:
        by_key: dict[str, list[Grant]] = defaultdict(list)
        by_token: dict[tuple[str, str], list[Grant]] = defaultdict(list)
        for assignment in snapshot.assignments:
            grant = Grant(assignment.role, assignment.deployment)
            if assignment.key_id:
                by_key[assignment.key_id].append(grant)
            elif assignment.tenant_id is not None and assignment.object_id is not None:
                by_token[(assignment.tenant_id, assignment.object_id)].append(grant)
        self.keys.load(snapshot.keys, {k: tuple(v) for k, v in by_key.items()})
        names = {i.object_id: i.name for i in snapshot.identities}
        self._token_principals = {
            who: Principal(who[1], names.get(who[1], who[1]), tuple(held), kind=ENTRA)
            for who, held in by_token.items()
        }
        self._load_token_service(snapshot)
        self.properties = snapshot.properties
        self.network = NetworkRules(
            snapshot.properties.default_action,
            tuple(parse_network(rule) for rule in snapshot.properties.ip_rules),
        )

    def _load_token_service(self, snapshot: Snapshot) -> None:
        self.tokens.load(snapshot.identities, snapshot.signing_keys, snapshot.signer)
        self.validator.trust(
            TrustedIssuer(
                self.tokens.issuer,
                self.settings.auth.audiences,
                tenants=[self.tokens.tenant_id],
                keys=[key.public_jwk for key in snapshot.signing_keys],
            )
        )

    async def close(self) -> None:
        await self.validator.close()

    # -- the request path -------------------------------------------------------------------------

    def client_address(self, peer: str | None, forwarded_for: str | None) -> IPAddress | None:
        return self.addresses.resolve(peer, forwarded_for)

    def issue_token(self, source: IPAddress | None, issue: Callable[[], IssuedToken]) -> IssuedToken:
        """Run a token request of the token service, counting a wrong identity header or client
        secret (its 401 and 403 answers) as a failed attempt of ``source``."""
        try:
            return issue()
        except ServiceError as error:
            if error.status in (401, 403):
                self.failed(source)
            raise

    def failed(self, source: IPAddress | None) -> None:
        """Count a wrong secret from ``source``. Past the source's limit, raise the 429 its
        sender must wait out instead of the 401. Right secrets are never refused for what their
        address did: the check happens only once a secret has been found wrong."""
        key = _attempt_source(source)
        wait = self.failures.retry_after(key)
        self.failures.record(key)
        if wait is None:
            metrics.AUTHENTICATION_FAILURES.labels("unauthorized").inc()
            if self.failures.retry_after(key) is not None:  # logged once a lockout, not a guess
                log.warning(
                    "%s sent %d wrong secrets within %g s; its further wrong secrets get 429",
                    source or "an unknown address", self.failures.limit, self.failures.window,
                )
            return
        metrics.AUTHENTICATION_FAILURES.labels("refused").inc()
        raise TooManyRequests(
            "Too many failed authentication attempts from this address. Check the key or "
            "token being sent, then retry after the time given.",
            retry_after_ms=int(wait * 1000) + 1,
            reason="authentication",
        )

    async def authenticate(
        self, api_key: str | None, bearer: str | None, source: IPAddress | None
    ) -> Principal:
        if api_key is not None:
            return self._key(api_key, source)
        if bearer is None:
            raise Unauthorized(sent=False)
        if bearer.count(".") != 2:  # not a JWT: the v1 routes take a key as a bearer token
            return self._key(bearer, source)
        try:
            claims = await self.validator.validate(bearer)
        except TokenRejected as reason:
            log.info("bearer token refused: %s", reason)
            if not reason.unknown_key:
                self.failed(source)
            raise InvalidToken() from None
        except WrongTenant as wrong:
            raise TenantMismatch(wrong.tenant) from None
        if claims.tenant_id == self.tokens.tenant_id and claims.issuer != self.tokens.issuer:
            # Role assignments name principals by tenant and object id; only this service may
            # speak for its own tenant, or another issuer could take on its identities' roles.
            log.info("refused a token of %s claiming the built-in tenant", claims.issuer)
            self.failed(source)
            raise InvalidToken()
        who = (claims.tenant_id, claims.object_id)
        return self._token_principals.get(who) or Principal(
            claims.object_id, claims.client_id or claims.object_id, (), kind=ENTRA
        )

    def principal(self, principal_id: str, tenant_id: str | None) -> Principal | None:
        """Who ``principal_id`` is now, for work done on their behalf later (a batch's lines):
        a key's principal while the key is active, a token holder's (``tenant_id`` given) with
        the roles assigned now, or a built-in caller; None for a key revoked since."""
        if tenant_id is not None:
            return self._token_principals.get((tenant_id, principal_id)) or Principal(
                principal_id, principal_id, (), kind=ENTRA
            )
        if principal_id in BUILT_IN:
            return BUILT_IN[principal_id]
        return self.keys.principal(principal_id)

    def tenant_of(self, principal: Principal) -> str | None:
        """The tenant of a token holder (None for keys and built-in callers)."""
        if principal.kind != ENTRA:
            return None
        return next(
            (tenant for tenant, object_id in self._token_principals if object_id == principal.id),
            self.tokens.tenant_id,
        )

    def _key(self, secret: str, source: IPAddress | None) -> Principal:
        if self.properties.disable_local_auth:
            raise LocalAuthDisabled()
        principal = self.keys.authenticate(secret)
        if principal is None:
            self.failed(source)
            raise Unauthorized()
        return principal

    # -- identities -------------------------------------------------------------------------------

    async def identities(self) -> list[Identity]:
        return await asyncio.to_thread(self.store.list_identities)

    async def create_identity(self, kind: str, name: str) -> tuple[Identity, str]:
        if kind not in (MANAGED, SERVICE_PRINCIPAL):
            raise InvalidRequest(f"kind is {MANAGED} or {SERVICE_PRINCIPAL}.", param="kind")
        if not NAME.fullmatch(name):
            raise InvalidRequest(
                "A name has 1 to 64 letters, digits, '.', '_' or '-'.", param="name"
            )
        secret = generate_secret() + generate_secret()
        now = time.time()
        identity = Identity(
            uuid.uuid4().hex[:16], kind, name, str(uuid.uuid4()), str(uuid.uuid4()),
            digest(secret), secret[-4:], now, now,
        )
        if not await asyncio.to_thread(self.store.insert_identity, identity):
            raise InvalidRequest(f"A {kind} identity named {name!r} exists already.", code="Conflict")
        await self._changed()
        return identity, secret

    async def find_identity(self, reference: str) -> Identity:
        """An identity by id, name (if unambiguous), client id or object id."""
        found = [
            identity for identity in await self.identities()
            if reference in (identity.id, identity.name, identity.client_id, identity.object_id)
        ]
        if len(found) != 1:
            raise NotFound(
                f"No single identity is named {reference!r}"
                + (" (several are; use the id)" if found else "")
                + ". `stockade identities list` and `stockade principals list` show them."
            )
        return found[0]

    async def reset_identity_secret(self, reference: str) -> tuple[Identity, str]:
        """A new secret for the identity; the old one stops working at once."""
        identity = await self.find_identity(reference)
        secret = generate_secret() + generate_secret()
        updated = await asyncio.to_thread(
            self.store.replace_identity_secret, identity.id, digest(secret), secret[-4:]
        )
        if updated is None:
            raise NotFound(f"Identity {reference!r} was deleted meanwhile.")
        await self._changed()
        return updated, secret

    async def delete_identity(self, reference: str) -> None:
        identity = await self.find_identity(reference)
        await asyncio.to_thread(self.store.delete_identity, identity.id, self.tokens.tenant_id)
        await self._changed()

    # -- role assignments -------------------------------------------------------------------------

    async def role_assignments(self) -> list[RoleAssignment]:
        return await asyncio.to_thread(self.store.list_role_assignments)

    async def assign_role(
        self,
        role: str,
        *,
        deployment: str | None = None,
        object_id: str | None = None,
        tenant_id: str | None = None,
        key_id: str | None = None,
        identity: str | None = None,
    ) -> RoleAssignment:
        """Give ``role`` to a token principal, an identity of this service, or a key. Deployment
        and key existence are the caller's to check."""
        canonical = resolve_role(role)
        if canonical is None:
            raise InvalidRequest(
                f"Unknown role {role!r}; use openai-user, openai-contributor or contributor.",
                param="role",
            )
        if sum(x is not None for x in (object_id, key_id, identity)) != 1:
            raise InvalidRequest(
                "Name exactly one principal: object_id (with tenant_id for another tenant's "
                "tokens), identity, or key_id.",
                param="principal",
            )
        if identity is not None:
            object_id = (await self.find_identity(identity)).object_id
            tenant_id = self.tokens.tenant_id
        elif object_id is not None:
            tenant_id = tenant_id or self.tokens.tenant_id
        assignment = RoleAssignment(
            uuid.uuid4().hex[:16], canonical, deployment, tenant_id if key_id is None else None,
            object_id, key_id, time.time(),
        )
        stored = await asyncio.to_thread(self.store.insert_role_assignment, assignment)
        await self._changed()
        return stored

    async def remove_role_assignment(self, assignment_id: str) -> None:
        if not await asyncio.to_thread(self.store.delete_role_assignment, assignment_id):
            raise NotFound(f"No role assignment has id {assignment_id!r} (`stockade roles list`).")
        await self._changed()

    # -- resource properties ----------------------------------------------------------------------

    async def set_properties(
        self,
        *,
        disable_local_auth: bool | None = None,
        default_action: str | None = None,
        ip_rules: list[str] | None = None,
    ) -> ResourceProperties:
        current = await asyncio.to_thread(self.store.resource_properties)
        changes: dict[str, Any] = {}
        if disable_local_auth is not None:
            changes["disable_local_auth"] = disable_local_auth
        if default_action is not None:
            action = default_action.capitalize()
            if action not in (ALLOW, DENY):
                raise InvalidRequest("default_action is Allow or Deny.", param="default_action")
            changes["default_action"] = action
        if ip_rules is not None:
            try:
                changes["ip_rules"] = tuple(dict.fromkeys(str(parse_network(r)) for r in ip_rules))
            except ValueError as exc:
                raise InvalidRequest(
                    f"Not an IP address or CIDR range: {exc}.", param="ip_rules"
                ) from None
        updated = replace(current, **changes)
        await asyncio.to_thread(self.store.set_resource_properties, updated)
        await self._changed()
        return updated

    # -- signing keys -----------------------------------------------------------------------------

    async def signing_keys(self) -> list[SigningKey]:
        return await asyncio.to_thread(self.store.signing_keys)

    async def rotate_signing_key(self) -> SigningKey:
        key = await asyncio.to_thread(new_signing_key, self._passphrase)
        await asyncio.to_thread(self.store.add_signing_key, key)
        await self._changed()
        return key

    # -- audit ------------------------------------------------------------------------------------

    async def record(self, event: AuditEvent) -> None:
        await asyncio.to_thread(self.store.insert_audit, event)

    async def audit(self, limit: int, action: str | None = None) -> list[AuditEvent]:
        return await asyncio.to_thread(self.store.list_audit, limit, action)


@functools.lru_cache(maxsize=8192)
def _attempt_source(address: IPAddress | None) -> object:
    # One IPv6 host usually holds a whole /64, so that is what counts as one source.
    if isinstance(address, ipaddress.IPv6Address):
        return ipaddress.IPv6Network((address, 64), strict=False)
    return address


def _configured_issuer(settings: IssuerSettings) -> TrustedIssuer:
    keys: list[dict[str, Any]] = []
    if settings.jwks_file is not None:
        keys = json.loads(settings.jwks_file.read_text())["keys"]
    return TrustedIssuer(
        settings.issuer, settings.audiences, tenants=settings.tenants, keys=keys,
        jwks_url=settings.jwks_url,
    )
