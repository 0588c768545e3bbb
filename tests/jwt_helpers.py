"""Signed tokens for tests: an issuer with its own keys, and a JWKS served over loopback HTTP."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from json_server import serve_json

COGNITIVE_SERVICES = "https://cognitiveservices.azure.com"


class SigningIssuer:
    """Mints Entra-shaped tokens with keys generated here."""

    def __init__(self, issuer: str, tenant_id: str | None = None) -> None:
        self.issuer = issuer
        self.tenant_id = tenant_id or str(uuid.uuid4())
        self.keys: dict[str, Any] = {}
        self.add_key("key-1")

    def add_key(self, kid: str, kind: str = "RSA") -> None:
        self.keys[kid] = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if kind == "RSA"
            else ec.generate_private_key(ec.SECP256R1())
        )

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self.keys.items():
            algorithm = RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else ECAlgorithm
            jwk = algorithm.to_jwk(key.public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "use": "sig"})
        return {"keys": keys}

    def token(
        self,
        *,
        kid: str = "key-1",
        algorithm: str | None = None,
        object_id: str = "11111111-1111-1111-1111-111111111111",
        lifetime: float = 3600,
        **claims: Any,
    ) -> str:
        key = self.keys[kid]
        now = int(time.time())
        payload = {
            "aud": COGNITIVE_SERVICES,
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": int(now + lifetime),
            "tid": self.tenant_id,
            "oid": object_id,
            "appid": "22222222-2222-2222-2222-222222222222",
            **claims,
        }
        payload = {k: v for k, v in payload.items() if v is not None}
        algorithm = algorithm or ("RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256")
        signing_key = None if algorithm == "none" else key
        return jwt.encode(payload, signing_key, algorithm=algorithm, headers={"kid": kid})


@contextlib.contextmanager
def serve_jwks(issuer: SigningIssuer) -> Iterator[tuple[str, list[str]]]:
    """The issuer's current JWKS at a loopback URL; yields the URL and a log of fetches."""
    fetches: list[str] = []

    def answer(_method: str, path: str, _body: Any) -> Any:
        fetches.append(path)
        return issuer.jwks()

    with serve_json(answer) as port:
        yield f"http://127.0.0.1:{port}/keys", fetches
