"""SQL for files: their metadata in ``files``, their contents sealed in ``file_chunks``.

A file is written chunk by chunk under a row in status ``uploading``, which no read shows and
whose ``expires_at`` lets the purge remove an upload that was never finished (its server died).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import sqlalchemy as sa

from stockade.store.paging import page_rows
from stockade.store.records import FileRecord
from stockade.store.tables import batch_lines, file_chunks, files, responses

UPLOADING = "uploading"
# Every column holding sealed data, which rekeying reseals.
SEALED_COLUMNS = (file_chunks.c.data, batch_lines.c.request, batch_lines.c.result, responses.c.data)
RESEAL_PAGE = 64


class FileStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def begin(self, record: FileRecord) -> None:
        with self.engine.begin() as connection:
            connection.execute(files.insert().values(**dataclasses.asdict(record)))

    def add_chunk(self, file_id: str, seq: int, data: bytes) -> None:
        with self.engine.begin() as connection:
            connection.execute(file_chunks.insert().values(file_id=file_id, seq=seq, data=data))

    def complete(self, record: FileRecord) -> None:
        """The upload's row, finished: shown from now on."""
        with self.engine.begin() as connection:
            connection.execute(
                files.update().where(files.c.id == record.id).values(**dataclasses.asdict(record))
            )

    def get(self, file_id: str) -> FileRecord | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(files).where(files.c.id == file_id, files.c.status != UPLOADING)
            ).first()
        return FileRecord(**row._mapping) if row else None

    def page(
        self, purpose: str | None, limit: int, after: str | None, *, newest_first: bool
    ) -> tuple[list[FileRecord], bool]:
        """A page of files in order of creation, and whether more follow it; ``after`` is the
        last id of the page before (a cursor that names no file starts from the beginning)."""
        query = sa.select(files).where(files.c.status != UPLOADING)
        if purpose is not None:
            query = query.where(files.c.purpose == purpose)
        with self.engine.connect() as connection:
            rows, more = page_rows(connection, files, query, limit, after, newest_first=newest_first)
        return [FileRecord(**row._mapping) for row in rows], more

    def chunk(self, file_id: str, seq: int) -> bytes | None:
        with self.engine.connect() as connection:
            return connection.scalar(
                sa.select(file_chunks.c.data).where(file_chunks.c.file_id == file_id, file_chunks.c.seq == seq)
            )

    def delete(self, file_id: str) -> bool:
        with self.engine.begin() as connection:
            connection.execute(file_chunks.delete().where(file_chunks.c.file_id == file_id))
            return bool(connection.execute(files.delete().where(files.c.id == file_id)).rowcount)

    def expired(self, now: float) -> list[str]:
        with self.engine.connect() as connection:
            return list(connection.scalars(sa.select(files.c.id).where(files.c.expires_at <= now)))

    def count_without_expiry(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.scalar(
                sa.select(sa.func.count()).select_from(files).where(files.c.expires_at.is_(None))
            ) or 0)

    def reseal_all(self, sealing_id: bytes, reseal: Callable[[bytes], bytes]) -> int:
        """Reseal every sealed value whose key id is not ``sealing_id``; returns how many. A
        page at a time, each in its own transaction, so that serving goes on meanwhile."""
        resealed = 0
        for column in SEALED_COLUMNS:
            keys = list(column.table.primary_key.columns)
            stale = sa.and_(column.is_not(None), sa.func.substr(column, 1, len(sealing_id)) != sealing_id)
            while True:
                with self.engine.begin() as connection:
                    rows = connection.execute(
                        sa.select(*keys, column).where(stale).order_by(*keys).limit(RESEAL_PAGE)
                    ).all()
                    for *key, value in rows:
                        connection.execute(
                            column.table.update()
                            .where(*(c == v for c, v in zip(keys, key, strict=True)), column == value)
                            .values({column.name: reseal(value)})
                        )
                resealed += len(rows)
                if len(rows) < RESEAL_PAGE:
                    break
        return resealed
