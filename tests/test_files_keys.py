"""The keys that seal files at rest: rotation (a new first key, then rekey), and what a server
missing a key, or given a bad one, says."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

import openai
import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from conftest import App, in_process
from stockade.batch.sealing import EncryptionKeyInvalid, EncryptionKeyMissing, Sealer
from stockade.config import Settings
from stockade.store.tables import file_chunks

CONTENT = b'{"custom_id": "a", "method": "POST", "url": "/embeddings", "body": {"model": "e", "input": "x"}}\n'


def new_key() -> bytes:
    return secrets.token_bytes(32)


def keys_setting(*keys: bytes) -> str:
    return json.dumps([base64.b64encode(key).decode() for key in keys])


def chunks(app: App) -> list[bytes]:
    with app.resource.store.engine.connect() as connection:
        return list(connection.scalars(sa.select(file_chunks.c.data)))


def test_a_value_sealed_with_one_key_opens_with_a_sealer_holding_it_second() -> None:
    old, new = new_key(), new_key()
    sealed = Sealer([old]).seal(b"secret")
    assert Sealer([new, old]).open(sealed) == b"secret"


def test_after_rekeying_the_old_key_alone_opens_nothing_and_the_contents_read_back(tmp_path: Path) -> None:
    old, new = new_key(), new_key()
    with in_process(tmp_path, deployments=(), STOCKADE_BATCH__ENCRYPTION_KEYS=keys_setting(old)) as app:
        uploaded = app.azure().files.create(file=("in.jsonl", CONTENT), purpose="batch")
    with in_process(tmp_path, deployments=(), STOCKADE_BATCH__ENCRYPTION_KEYS=keys_setting(new, old)) as app:
        with app.http() as http:
            assert http.post("/management/files/rekey").json() == {"resealed": 1}
        sealed = chunks(app)
        assert app.azure().files.content(uploaded.id).content == CONTENT
    for value in sealed:
        with pytest.raises(EncryptionKeyMissing):
            Sealer([old]).open(value)
    with in_process(tmp_path, deployments=(), STOCKADE_BATCH__ENCRYPTION_KEYS=keys_setting(new)) as app:
        assert app.azure().files.content(uploaded.id).content == CONTENT


def test_a_file_sealed_with_a_key_the_server_lacks_is_a_clear_error(tmp_path: Path) -> None:
    with in_process(tmp_path, deployments=(), STOCKADE_BATCH__ENCRYPTION_KEYS=keys_setting(new_key())) as app:
        uploaded = app.azure().files.create(file=("in.jsonl", CONTENT), purpose="batch")
    with (
        in_process(tmp_path, deployments=(), STOCKADE_BATCH__ENCRYPTION_KEYS=keys_setting(new_key())) as app,
        pytest.raises(openai.APIStatusError) as failed,
    ):
        app.azure().files.content(uploaded.id)
    assert failed.value.status_code == 503
    assert failed.value.code == "EncryptionKeyMissing"
    assert "batch.encryption_keys" in failed.value.message


def test_a_data_directory_without_configured_keys_makes_its_own_owner_only(tmp_path: Path) -> None:
    sealer = Sealer.from_settings(Settings(data_dir=tmp_path))
    assert (tmp_path / "files.key").stat().st_mode & 0o777 == 0o600
    assert Sealer.from_settings(Settings(data_dir=tmp_path)).open(sealer.seal(b"x")) == b"x"


@pytest.mark.parametrize("key", ["not base64!", base64.b64encode(b"short").decode()])
def test_a_configured_key_that_is_no_aes_256_key_is_an_invalid_setting(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValidationError, match=r"encryption_keys\[0\] .*openssl rand -base64 32"):
        Settings(data_dir=tmp_path, batch={"encryption_keys": [key]})


def test_a_damaged_key_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "files.key").write_text("damaged")
    with pytest.raises(EncryptionKeyInvalid, match=r"files\.key is not base64"):
        Sealer.from_settings(Settings(data_dir=tmp_path))
