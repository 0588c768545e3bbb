"""Bearer tokens: JWTs validated against trusted issuers, as Azure validates Entra ID tokens.

Each issuer has its issuer string, its signing keys (a JWKS URL fetched and cached, or keys given
in advance) and the audiences and tenants it may issue for. Stockade's own token service is one
more issuer, with the keys kept in its store, checked by exactly this code.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import orjson

log = logging.getLogger(__name__)

# Only public-key algorithms: a token naming "none" or an HMAC algorithm is refused before any key
# is looked at, which also rules out signing with a public key used as an HMAC secret.
_ALGORITHMS_BY_KEY_TYPE = {
    "RSA": {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"},
    "EC": {"ES256", "ES384", "ES512"},
    "OKP": {"EdDSA"},
}
ACCEPTED_ALGORITHMS = frozenset().union(*_ALGORITHMS_BY_KEY_TYPE.values())

JWKS_REFRESH_INTERVAL = 3600.0  # seconds a fetched key set is trusted before it is fetched again
UNKNOWN_KID_REFETCH_INTERVAL = 10.0  # an unknown kid triggers a fetch at most this often
MAX_TOKEN_LENGTH = 16 * 1024  # Entra tokens are 1-4 KB; longer ones are refused unparsed
MAX_REMEMBERED_TOKENS = 10_000
MAX_ID_LENGTH = 64  # tid and oid are GUIDs in Entra; they are stored, so their length is bounded


class TokenRejected(Exception):
    """Why a token was refused; logged for operators, never told to the caller.

    ``unknown_key`` marks tokens naming a key the issuer does not (yet) publish: during a key
    rollover honest clients send those, so they do not count as failed attempts."""

    def __init__(self, reason: str, *, unknown_key: bool = False) -> None:
        super().__init__(reason)
        self.unknown_key = unknown_key


class WrongTenant(Exception):
    """A genuine token of a trusted issuer, for a tenant that issuer may not speak for here."""

    def __init__(self, tenant: str) -> None:
        super().__init__(tenant)
        self.tenant = tenant


@dataclass(frozen=True, slots=True)
class TokenClaims:
    issuer: str
    tenant_id: str
    object_id: str
    client_id: str | None  # appid (v1 tokens) or azp (v2 tokens)


@dataclass(frozen=True, slots=True)
class _Key:
    jwk: jwt.PyJWK
    declared_algorithm: str | None  # the key set's "alg", which then binds the key to it


def audience_forms(audiences: Iterable[str]) -> list[str]:
    """Each audience with and without a trailing slash: resource ids arrive both ways."""
    forms: list[str] = []
    for audience in audiences:
        bare = audience.rstrip("/")
        forms += [bare, bare + "/"]
    return forms


class TrustedIssuer:
    """One issuer and its signing keys."""

    def __init__(
        self,
        issuer: str,
        audiences: Iterable[str],
        *,
        tenants: Iterable[str] = (),
        keys: Iterable[Mapping[str, Any]] = (),
        jwks_url: str | None = None,
    ) -> None:
        self.issuer = issuer
        self.audiences = audience_forms(audiences)
        self.tenants = frozenset(tenants)
        self.jwks_url = jwks_url
        self._keys: dict[str | None, _Key] = {}
        self.version = 0  # bumped whenever the keys change, to drop validations made with old ones
        self._fetched_at = -float("inf")
        self._lock = asyncio.Lock()
        self.set_keys(keys)

    def set_keys(self, keys: Iterable[Mapping[str, Any]]) -> None:
        loaded = {}
        for jwk in keys:
            try:
                loaded[jwk.get("kid")] = _Key(jwt.PyJWK(dict(jwk)), jwk.get("alg"))
            except (jwt.PyJWTError, AttributeError, TypeError, ValueError) as exc:
                # One unusable entry must not hide the others.
                log.warning("issuer %s: skipping an unusable key: %s", self.issuer, exc)
        self._keys = loaded
        self.version += 1

    async def key(self, kid: str | None, http: httpx.AsyncClient) -> _Key | None:
        if self.jwks_url is None:
            return self._keys.get(kid)
        age = time.monotonic() - self._fetched_at
        if age > JWKS_REFRESH_INTERVAL or (kid not in self._keys and age > UNKNOWN_KID_REFETCH_INTERVAL):
            await self._fetch(http)
        return self._keys.get(kid)

    async def _fetch(self, http: httpx.AsyncClient) -> None:
        assert self.jwks_url is not None
        async with self._lock:
            if time.monotonic() - self._fetched_at <= UNKNOWN_KID_REFETCH_INTERVAL:
                return  # another request fetched while this one waited
            self._fetched_at = time.monotonic()
            try:
                response = await http.get(self.jwks_url)
                response.raise_for_status()
                self.set_keys(response.json()["keys"])
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                # Keep the keys we have: an unreachable JWKS must not log everyone out.
                log.warning("issuer %s: fetching %s failed: %s", self.issuer, self.jwks_url, exc)


@dataclass(frozen=True, slots=True)
class _Validated:
    claims: TokenClaims
    expires: float
    issuer: TrustedIssuer
    version: int


class TokenValidator:
    """Validates tokens, remembering those it accepted until they expire: a client sends the
    same token for up to an hour, and checking its signature each time would cost far more than
    the rest of a request's authentication."""

    def __init__(self, issuers: Iterable[TrustedIssuer] = (), *, leeway_seconds: float = 60) -> None:
        self._issuers = {issuer.issuer: issuer for issuer in issuers}
        self._leeway = leeway_seconds
        self._http: httpx.AsyncClient | None = None
        self._validated: dict[str, _Validated] = {}

    def trust(self, issuer: TrustedIssuer) -> None:
        """Add an issuer, or replace the one with the same issuer string."""
        self._issuers[issuer.issuer] = issuer
        self._validated.clear()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def validate(self, token: str) -> TokenClaims:
        """The token's claims; ``TokenRejected`` saying why not, or ``WrongTenant``."""
        known = self._validated.get(token)
        if known is not None:
            # Replacing an issuer clears what was remembered; new keys of the same one do not.
            if known.issuer.version == known.version and time.time() < known.expires:
                return known.claims
            del self._validated[token]
        claims, expires, issuer = await self._validate(token)
        if len(self._validated) >= MAX_REMEMBERED_TOKENS:
            del self._validated[next(iter(self._validated))]  # the oldest
        self._validated[token] = _Validated(claims, expires, issuer, issuer.version)
        return claims

    async def _validate(self, token: str) -> tuple[TokenClaims, float, TrustedIssuer]:
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenRejected(f"token of {len(token)} characters")
        header, unverified = _unverified(token)
        algorithm, kid = header.get("alg"), header.get("kid")
        if not isinstance(algorithm, str) or algorithm not in ACCEPTED_ALGORITHMS:
            raise TokenRejected(f"algorithm {algorithm!r} is not accepted")
        claimed = unverified.get("iss")
        issuer = self._issuers.get(claimed) if isinstance(claimed, str) else None
        if issuer is None:
            raise TokenRejected(f"untrusted issuer {claimed!r}")
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=5.0)
        if kid is not None and not isinstance(kid, str):
            raise TokenRejected("malformed: kid is not a string")
        key = await issuer.key(kid, self._http)
        if key is None:
            raise TokenRejected(f"issuer {issuer.issuer} has no key {kid!r}", unknown_key=True)
        # PyJWK refuses a key without "kty", though its key_type is typed as optional.
        if algorithm not in _ALGORITHMS_BY_KEY_TYPE.get(key.jwk.key_type or "", ()) or (
            key.declared_algorithm not in (None, algorithm)
        ):
            raise TokenRejected(f"algorithm {algorithm} does not match key {kid!r}")
        try:
            claims = jwt.decode(
                token,
                key.jwk.key,
                algorithms=[algorithm],
                audience=issuer.audiences,
                issuer=issuer.issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise TokenRejected(str(exc)) from None
        tenant, object_id = claims.get("tid"), claims.get("oid")
        if not isinstance(tenant, str) or not isinstance(object_id, str):
            raise TokenRejected("no tid or oid claim")
        if len(tenant) > MAX_ID_LENGTH or len(object_id) > MAX_ID_LENGTH:
            raise TokenRejected("tid or oid longer than an Entra id can be")
        if not isinstance(claims["exp"], int | float):
            raise TokenRejected("exp is not a number")
        if issuer.tenants and tenant not in issuer.tenants:
            raise WrongTenant(tenant)
        client = claims.get("appid") or claims.get("azp")
        found = TokenClaims(issuer.issuer, tenant, object_id, client if isinstance(client, str) else None)
        return found, claims["exp"] + self._leeway, issuer


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims before any check, only to find the issuer and key. (PyJWT's own
    decoding checks every character in Python; the one decode that verifies does that.)"""
    try:
        header, payload, _ = token.split(".")
        decoded = [orjson.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
                   for part in (header, payload)]
    except (ValueError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise TokenRejected(f"malformed: {exc}") from None
    if not all(isinstance(part, dict) for part in decoded):
        raise TokenRejected("malformed: header or claims are not JSON objects")
    return decoded[0], decoded[1]
