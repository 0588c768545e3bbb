"""Sealing what files and batches keep at rest: AES-256-GCM under keys from configuration.

A sealed value is ``key id ‖ nonce ‖ ciphertext and tag``. The key id (the first bytes of the
key's SHA-256) says which key opens it, so that keys can be rotated: the first key seals, every
key opens, and ``Files.rekey`` reseals what an older key sealed. A copy of the database alone
opens nothing.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from stockade.config import AES_KEY_BYTES, Settings, aes_key
from stockade.errors import ServiceError
from stockade.private import private_secret

KEY_ID_BYTES = 8
NONCE_BYTES = 12
KEY_FILE = "files.key"


class EncryptionKeyInvalid(ServiceError):
    """The data directory's key file holds no AES-256 key (configured keys are checked with the
    rest of the settings): the server can seal and open nothing."""

    status = 503
    code = "EncryptionKeyInvalid"


class EncryptionKeyMissing(ServiceError):
    """A value sealed with a key the server no longer has (or damaged at rest). Not the caller's
    mistake and not a fault a retry mends: the operator must give the key back."""

    status = 503
    code = "EncryptionKeyMissing"


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()[:KEY_ID_BYTES]


class Sealer:
    def __init__(self, keys: list[bytes]) -> None:
        """``keys[0]`` seals; all of them open."""
        if not keys or any(len(key) != AES_KEY_BYTES for key in keys):
            raise ValueError(f"a Sealer needs one or more keys of {AES_KEY_BYTES} bytes")
        self._ciphers = {key_id(key): AESGCM(key) for key in keys}
        self.sealing_id = key_id(keys[0])

    @classmethod
    def from_settings(cls, settings: Settings) -> Sealer:
        """``batch.encryption_keys``, or, when none is configured, the data directory's own key,
        created on first use (owner-only). Replicas sharing a store must be given the same keys."""
        configured = settings.batch.encryption_keys
        if configured:
            return cls([aes_key(key.get_secret_value()) for key in configured])
        return cls([_data_dir_key(settings.data_dir)])

    def seal(self, plaintext: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return self.sealing_id + nonce + self._ciphers[self.sealing_id].encrypt(nonce, plaintext, None)

    def open(self, sealed: bytes) -> bytes:
        sealed_with = sealed[:KEY_ID_BYTES]
        cipher = self._ciphers.get(sealed_with)
        if cipher is None:
            raise EncryptionKeyMissing(
                f"Stored data was sealed with the encryption key whose id is {sealed_with.hex()}, "
                "which this server does not have. Put that key back in batch.encryption_keys "
                "(after the first, which seals), restart, and run `stockade files rekey` to reseal "
                "with the first key."
            )
        nonce = sealed[KEY_ID_BYTES:KEY_ID_BYTES + NONCE_BYTES]
        try:
            return cipher.decrypt(nonce, sealed[KEY_ID_BYTES + NONCE_BYTES:], None)
        except InvalidTag:
            raise EncryptionKeyMissing(
                f"Stored data sealed with the key {sealed_with.hex()} does not open: it was changed "
                "at rest. Restore the store from a backup."
            ) from None

    def sealed_with_first(self, sealed: bytes) -> bool:
        return sealed[:KEY_ID_BYTES] == self.sealing_id


def _data_dir_key(data_dir: Path) -> bytes:
    path = data_dir / KEY_FILE
    text = private_secret(path, lambda: base64.b64encode(secrets.token_bytes(AES_KEY_BYTES)).decode())
    try:
        return aes_key(text)
    except ValueError as exc:
        raise EncryptionKeyInvalid(
            f"The key file {path} {exc}, or restore the file from a backup: what it sealed opens "
            "with it only."
        ) from None
