"""Files on each store the service runs on, SQLite and PostgreSQL: pages, contents across chunks,
a batch's output file, lines for the runner, and resealing."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from conftest import postgres_schema_url
from stockade.batch import files as files_module
from stockade.batch.files import Files
from stockade.batch.sealing import EncryptionKeyMissing, Sealer
from stockade.config import Settings
from stockade.store import Store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    sqlite = contextlib.nullcontext(f"sqlite:///{tmp_path / 'store.db'}")
    with postgres_schema_url() if request.param == "postgres" else sqlite as url:
        store = Store(url)
        store.migrate()
        try:
            yield store
        finally:
            store.close()


async def pieces(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def files_on(store: Store, tmp_path: Path, *keys: bytes) -> Files:
    """Files on ``store`` whose clock moves a second at each reading: uploads in order of creation."""
    seconds = itertools.count(1_800_000_000)
    sealer = Sealer(list(keys) or [secrets.token_bytes(32)])
    return Files(store, sealer, Settings(data_dir=tmp_path), clock=lambda: float(next(seconds)))


async def read(files: Files, file_id: str) -> bytes:
    return b"".join([chunk async for chunk in await files.content(file_id)])


def test_pages_follow_the_cursor_in_either_order(store: Store, tmp_path: Path) -> None:
    files = files_on(store, tmp_path)
    ids = [asyncio.run(files.upload(None, "user_data", f"{n}.txt", pieces(b"x"), None)).id for n in range(5)]
    first, more = asyncio.run(files.list(None, 2, None, "asc"))
    second, _ = asyncio.run(files.list(None, 2, first[-1].id, "asc"))
    assert more and [f.id for f in first + second] == ids[:4]
    newest, _ = asyncio.run(files.list("user_data", 10, ids[2], "desc"))
    assert [f.id for f in newest] == ids[1::-1]


def test_contents_spanning_several_chunks_read_back_whole(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files_module, "CHUNK_BYTES", 7)
    files = files_on(store, tmp_path)
    content = b"".join(b'{"custom_id": "%d", "method": "POST", "url": "/embeddings", "body": {"model": "e", "input": "x"}}\n' % n
                       for n in range(3))
    record = asyncio.run(files.upload(None, "batch", "in.jsonl", pieces(content[:50], content[50:]), None))
    assert (record.lines, record.url, record.deployment) == (3, "/embeddings", "e")
    assert asyncio.run(read(files, record.id)) == content
    assert list(files.lines(record.id)) == content.splitlines()


def test_a_batch_output_file_holds_one_line_per_result(store: Store, tmp_path: Path) -> None:
    files = files_on(store, tmp_path)
    record = files.create_output("batch_x_output.jsonl", [b'{"a": 1}', b'{"b": 2}'], expires_at=None)
    assert (record.purpose, record.bytes) == ("batch_output", 18)
    assert asyncio.run(read(files, record.id)) == b'{"a": 1}\n{"b": 2}\n'


def test_rekeying_reseals_what_an_older_key_sealed(store: Store, tmp_path: Path) -> None:
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    record = asyncio.run(files_on(store, tmp_path, old).upload(None, "evals", "e.txt", pieces(b"data"), None))
    rotated = files_on(store, tmp_path, new, old)
    assert asyncio.run(rotated.rekey()) == 1
    assert asyncio.run(rotated.rekey()) == 0
    assert asyncio.run(read(files_on(store, tmp_path, new), record.id)) == b"data"
    with pytest.raises(EncryptionKeyMissing):
        asyncio.run(read(files_on(store, tmp_path, old), record.id))
