"""Signing keys of the built-in token service.

Private keys are kept in the store encrypted (PKCS#8 with a passphrase: ``auth.secret_key``, or a
key file created in the data directory), so a copy of the database alone cannot mint tokens.
Public keys are kept in the clear: they are what the JWKS publishes.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from stockade.private import private_secret
from stockade.store import SigningKey

ALGORITHM = "RS256"


def new_signing_key(passphrase: bytes) -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = secrets.token_urlsafe(16)
    public_jwk: dict[str, Any] = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    public_jwk.update(kid=kid, use="sig", alg=ALGORITHM)
    encrypted = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    return SigningKey(kid, encrypted.decode("ascii"), public_jwk, time.time())


def private_key(key: SigningKey, passphrase: bytes) -> rsa.RSAPrivateKey:
    """The key to sign with; ``ValueError`` if the passphrase is not the one it was stored with."""
    loaded = serialization.load_pem_private_key(key.private_key.encode("ascii"), passphrase)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ValueError(f"signing key {key.kid} is not an RSA key")
    return loaded


def passphrase(configured: str | None, data_dir: Path) -> bytes:
    """The configured secret, or the data directory's own, created on first use (mode 0600).
    Replicas sharing a store must be given the same ``auth.secret_key``."""
    if configured:
        return configured.encode("utf-8")
    return private_secret(data_dir / "secret.key", lambda: secrets.token_hex(32)).encode("utf-8")
