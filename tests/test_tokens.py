"""Bearer tokens are accepted only when signed by a trusted issuer's key, for an accepted
audience and tenant, and within their lifetime."""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import hmac
import json
import time
import types
from collections.abc import Iterator

import jwt
import jwt.api_jwt
import pytest
from cryptography.hazmat.primitives import serialization

from jwt_helpers import COGNITIVE_SERVICES, SigningIssuer, serve_jwks
from stockade.access.tokens import (
    MAX_TOKEN_LENGTH,
    TokenRejected,
    TokenValidator,
    TrustedIssuer,
    WrongTenant,
)

ISSUER = "https://sts.example.test/tenant/"


@pytest.fixture
def issuer() -> SigningIssuer:
    return SigningIssuer(ISSUER)


def validator_for(issuer: SigningIssuer, **options) -> TokenValidator:  # type: ignore[no-untyped-def]
    trusted = TrustedIssuer(
        issuer.issuer, options.pop("audiences", [COGNITIVE_SERVICES]),
        keys=issuer.jwks()["keys"], **options,
    )
    return TokenValidator([trusted], leeway_seconds=60)


def validate(validator: TokenValidator, token: str):  # type: ignore[no-untyped-def]
    return asyncio.run(validator.validate(token))


def test_a_token_signed_by_a_trusted_issuer_yields_its_principal(issuer: SigningIssuer) -> None:
    claims = validate(validator_for(issuer), issuer.token(object_id="abc"))
    assert (claims.issuer, claims.tenant_id, claims.object_id) == (ISSUER, issuer.tenant_id, "abc")
    assert claims.client_id == "22222222-2222-2222-2222-222222222222"


def test_elliptic_curve_keys_are_accepted(issuer: SigningIssuer) -> None:
    issuer.add_key("ec", kind="EC")
    assert validate(validator_for(issuer), issuer.token(kid="ec")).object_id


def test_an_unsigned_token_is_refused(issuer: SigningIssuer) -> None:
    unsigned = jwt.encode(jwt.decode(issuer.token(), options={"verify_signature": False}), None, algorithm="none")
    with pytest.raises(TokenRejected, match="algorithm"):
        validate(validator_for(issuer), unsigned)


def test_hmac_signed_with_the_public_key_is_refused(issuer: SigningIssuer) -> None:
    public_pem = issuer.keys["key-1"].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": "key-1"}).encode()).rstrip(b"=")
    payload = issuer.token().split(".")[1].encode()
    signature = base64.urlsafe_b64encode(
        hmac.new(public_pem, header + b"." + payload, hashlib.sha256).digest()
    ).rstrip(b"=")
    forged = b".".join((header, payload, signature)).decode()
    with pytest.raises(TokenRejected, match="algorithm"):
        validate(validator_for(issuer), forged)


def test_a_token_signed_by_another_key_under_a_known_kid_is_refused(issuer: SigningIssuer) -> None:
    impostor = SigningIssuer(ISSUER, issuer.tenant_id)
    with pytest.raises(TokenRejected, match="Signature"):
        validate(validator_for(issuer), impostor.token())


def test_an_expired_token_is_refused(issuer: SigningIssuer) -> None:
    with pytest.raises(TokenRejected, match="expired"):
        validate(validator_for(issuer), issuer.token(lifetime=-120))


def test_a_token_expired_within_the_clock_skew_is_accepted(issuer: SigningIssuer) -> None:
    assert validate(validator_for(issuer), issuer.token(lifetime=-20)).object_id


def test_a_token_not_yet_valid_is_refused(issuer: SigningIssuer) -> None:
    with pytest.raises(TokenRejected, match="not yet valid"):
        validate(validator_for(issuer), issuer.token(nbf=int(time.time()) + 600))


def test_a_token_without_expiry_is_refused(issuer: SigningIssuer) -> None:
    token = jwt.encode(
        {"iss": ISSUER, "aud": COGNITIVE_SERVICES, "tid": "t", "oid": "o"},
        issuer.keys["key-1"], algorithm="RS256", headers={"kid": "key-1"},
    )
    with pytest.raises(TokenRejected, match="exp"):
        validate(validator_for(issuer), token)


def test_a_token_for_another_audience_is_refused(issuer: SigningIssuer) -> None:
    with pytest.raises(TokenRejected, match=r"[Aa]udience"):
        validate(validator_for(issuer), issuer.token(aud="https://management.azure.com"))


def test_the_audience_may_carry_a_trailing_slash(issuer: SigningIssuer) -> None:
    assert validate(validator_for(issuer), issuer.token(aud=COGNITIVE_SERVICES + "/")).object_id


def test_an_api_uri_audience_is_accepted_when_configured(issuer: SigningIssuer) -> None:
    validator = validator_for(issuer, audiences=[COGNITIVE_SERVICES, "api://stockade"])
    assert validate(validator, issuer.token(aud="api://stockade")).object_id


def test_a_token_from_an_unknown_issuer_is_refused(issuer: SigningIssuer) -> None:
    stranger = SigningIssuer("https://sts.stranger.test/")
    with pytest.raises(TokenRejected, match="untrusted issuer"):
        validate(validator_for(issuer), stranger.token())


def test_a_tenant_outside_the_allow_list_is_told_apart(issuer: SigningIssuer) -> None:
    validator = validator_for(issuer, tenants=["00000000-0000-0000-0000-000000000000"])
    with pytest.raises(WrongTenant):
        validate(validator, issuer.token())


def test_a_token_without_an_object_id_is_refused(issuer: SigningIssuer) -> None:
    with pytest.raises(TokenRejected, match="oid"):
        validate(validator_for(issuer), issuer.token(oid=None))


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30.", "x" * (MAX_TOKEN_LENGTH + 1)])
def test_malformed_tokens_are_refused(issuer: SigningIssuer, token: str) -> None:
    with pytest.raises(TokenRejected):
        validate(validator_for(issuer), token)


@pytest.fixture
def jwks_issuer(issuer: SigningIssuer) -> Iterator[tuple[SigningIssuer, TokenValidator, list[str]]]:
    with serve_jwks(issuer) as (url, fetches):
        yield issuer, TokenValidator([TrustedIssuer(ISSUER, [COGNITIVE_SERVICES], jwks_url=url)]), fetches


def test_keys_are_fetched_from_the_jwks_url_once_and_cached(jwks_issuer) -> None:  # type: ignore[no-untyped-def]
    issuer, validator, fetches = jwks_issuer

    async def twice() -> None:
        await validator.validate(issuer.token())
        await validator.validate(issuer.token())
        await validator.close()

    asyncio.run(twice())
    assert len(fetches) == 1


def test_an_unknown_kid_refreshes_the_jwks(jwks_issuer, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    issuer, validator, fetches = jwks_issuer
    monkeypatch.setattr("stockade.access.tokens.UNKNOWN_KID_REFETCH_INTERVAL", 0.0)

    async def rotate() -> None:
        await validator.validate(issuer.token())
        issuer.add_key("key-2")
        claims = await validator.validate(issuer.token(kid="key-2"))
        await validator.close()
        assert claims.object_id

    asyncio.run(rotate())
    assert len(fetches) == 2


def test_unknown_kids_do_not_hammer_the_jwks_url(jwks_issuer) -> None:  # type: ignore[no-untyped-def]
    issuer, validator, fetches = jwks_issuer
    issuer.add_key("key-2")
    token = issuer.token(kid="key-2")
    del issuer.keys["key-2"]

    async def probe() -> None:
        for _ in range(5):
            with pytest.raises(TokenRejected, match="no key"):
                await validator.validate(token)
        await validator.close()

    asyncio.run(probe())
    assert len(fetches) == 1


def test_an_unreachable_jwks_refuses_tokens_without_failing(issuer: SigningIssuer) -> None:
    validator = TokenValidator([TrustedIssuer(ISSUER, [COGNITIVE_SERVICES], jwks_url="http://127.0.0.1:9/keys")])
    with pytest.raises(TokenRejected, match="no key"):
        validate(validator, issuer.token())


def test_a_remembered_token_is_refused_once_its_key_is_withdrawn(issuer: SigningIssuer) -> None:
    trusted = TrustedIssuer(ISSUER, [COGNITIVE_SERVICES], keys=issuer.jwks()["keys"])
    validator = TokenValidator([trusted])
    token = issuer.token()
    assert validate(validator, token).object_id
    trusted.set_keys([])
    with pytest.raises(TokenRejected, match="no key"):
        validate(validator, token)


def later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """From now on the validator and PyJWT read a clock ``seconds`` ahead of the real one."""
    real = datetime.datetime

    class Shifted(real):
        @classmethod
        def now(cls, tz: datetime.tzinfo | None = None) -> datetime.datetime:  # type: ignore[override]
            return real.now(tz) + datetime.timedelta(seconds=seconds)

    monkeypatch.setattr(jwt.api_jwt, "datetime", Shifted)
    shifted = types.SimpleNamespace(time=lambda: time.time() + seconds, monotonic=lambda: time.monotonic() + seconds)
    monkeypatch.setattr("stockade.access.tokens.time", shifted)


def test_a_remembered_token_is_refused_once_it_expires(issuer: SigningIssuer, monkeypatch: pytest.MonkeyPatch) -> None:
    trusted = TrustedIssuer(ISSUER, [COGNITIVE_SERVICES], keys=issuer.jwks()["keys"])
    validator = TokenValidator([trusted], leeway_seconds=0)
    token = issuer.token(lifetime=60)
    assert validate(validator, token).object_id
    later(monkeypatch, 61)
    with pytest.raises(TokenRejected, match="expired"):
        validate(validator, token)


def forged_header(issuer: SigningIssuer, header: dict[str, object]) -> str:
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return ".".join([encoded, *issuer.token().split(".")[1:]])


@pytest.mark.parametrize("header", [{"alg": []}, {"alg": "RS256", "kid": {}}, {"alg": "RS256", "kid": ["key-1"]}])
def test_header_fields_of_the_wrong_type_are_refused(issuer: SigningIssuer, header: dict[str, object]) -> None:
    with pytest.raises(TokenRejected):
        validate(validator_for(issuer), forged_header(issuer, header))


def test_an_expiry_that_is_not_a_number_is_refused(issuer: SigningIssuer) -> None:
    with pytest.raises(TokenRejected):
        validate(validator_for(issuer), issuer.token(exp=str(int(time.time()) + 600)))


def test_unusable_entries_of_a_key_set_are_skipped(issuer: SigningIssuer) -> None:
    keys = [42, {"kid": ["x"], "kty": "RSA"}, *issuer.jwks()["keys"]]
    validator = TokenValidator([TrustedIssuer(ISSUER, [COGNITIVE_SERVICES], keys=keys)])  # type: ignore[list-item]
    assert validate(validator, issuer.token()).object_id
