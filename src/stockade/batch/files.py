"""Files as Azure OpenAI's ``/openai/files`` keeps them: uploaded as they stream in, checked (a
batch input file line by line), sealed chunk by chunk in the store, and deleted at their expiry.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any

from stockade.batch.jsonl import InputChecker
from stockade.batch.sealing import Sealer
from stockade.config import Settings
from stockade.errors import InvalidRequest, NotFound, shown
from stockade.store import FileRecord, Store
from stockade.store.files import UPLOADING
from stockade.telemetry.outage import Outage, every

log = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024  # what is sealed, stored and read back at once
BATCH, BATCH_OUTPUT = "batch", "batch_output"
# What uploads may be for: Azure's upload purposes and the openai SDK's (batch_output is written
# by batches only).
UPLOAD_PURPOSES = ("assistants", "assistants_output", BATCH, "evals", "fine-tune", "fine-tune-results",
                   "user_data", "vision")
# Azure's range for expires_after (14 to 30 days).
SHORTEST_EXPIRY, LONGEST_EXPIRY = 1_209_600, 2_592_000
# An upload that never finished (its server stopped mid-way) is purged after this long.
UNFINISHED_UPLOAD_SECONDS = 86_400
PURGE_SECONDS = 60.0


class FileTooLarge(InvalidRequest):
    code = "file_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The file is larger than this server's limit of {limit} bytes (batch.max_file_bytes; "
            "Azure's is 200 MB); nothing was stored. Split it into several files.",
            param="file",
        )


class ZeroDataRetention(InvalidRequest):
    code = "ZeroDataRetention"

    def __init__(self, deployment: str) -> None:
        super().__init__(
            f"Deployment {deployment!r} has zero data retention, so it takes no files or batches, "
            "which keep request bodies at rest; nothing was stored. Name another deployment in "
            f"the file, or allow retention with `stockade deployments update {deployment} "
            "--no-zero-data-retention`.",
            param="file",
        )


def file_not_found(file_id: str) -> NotFound:
    return NotFound(
        f"File {shown(file_id)!r} not found. `stockade files list` shows the files there are; a "
        "file is deleted at its expires_at."
    )


def file_object(record: FileRecord) -> dict[str, Any]:
    """Azure's File object."""
    return {
        "object": "file",
        "id": record.id,
        "bytes": record.bytes,
        "created_at": int(record.created_at),
        "filename": record.filename,
        "purpose": record.purpose,
        "status": record.status,
        "status_details": record.status_details,
        "expires_at": int(record.expires_at) if record.expires_at is not None else None,
    }


def check_purpose(purpose: str) -> str:
    if purpose not in UPLOAD_PURPOSES:
        raise InvalidRequest(
            f"purpose {shown(purpose)!r} is not one files can be uploaded for; use one of "
            f"{', '.join(UPLOAD_PURPOSES)}.",
            code="invalid_value",
            param="purpose",
        )
    return purpose


def check_expires_after(seconds: int) -> int:
    if not SHORTEST_EXPIRY <= seconds <= LONGEST_EXPIRY:
        raise InvalidRequest(
            f"expires_after.seconds must be from {SHORTEST_EXPIRY} (14 days) to {LONGEST_EXPIRY} "
            f"(30 days), as on Azure; {seconds} is not. Leave expires_after out to keep the file "
            "until it is deleted.",
            code="invalid_value",
            param="expires_after.seconds",
        )
    return seconds


class Upload:
    """A file being received: written as it arrives, shown once ``finish`` accepts it. Whatever
    fails before then (the file's lines, its size, the caller going away) leaves nothing stored
    once ``abort`` has run."""

    def __init__(self, files: Files, record: FileRecord, limit: int | None) -> None:
        """``limit``: the most bytes it may have (an upload's; a batch's output has none)."""
        self._files = files
        self._record = record
        self._limit = limit
        self._buffer = bytearray()
        self._size = 0
        self._chunks = 0
        settings = files.settings
        self._checker = (
            InputChecker(settings.batch.max_file_lines, settings.limits.default_max_tokens)
            if record.purpose == BATCH else None
        )

    async def write(self, data: bytes) -> None:
        await asyncio.to_thread(self.add, data)

    async def finish(self, expires_after: int | None) -> FileRecord:
        """Accept the file received (or raise why not, storing nothing more) and show it."""
        return await asyncio.to_thread(self._accept, expires_after)

    async def abort(self) -> None:
        await asyncio.to_thread(self._files.store.files.delete, self._record.id)

    def add(self, data: bytes) -> None:
        self._size += len(data)
        if self._limit is not None and self._size > self._limit:
            raise FileTooLarge(self._limit)
        if self._checker is not None:
            self._checker.feed(data)
        self._buffer += data
        while len(self._buffer) >= CHUNK_BYTES:
            self._store_chunk(bytes(self._buffer[:CHUNK_BYTES]))
            del self._buffer[:CHUNK_BYTES]

    def _store_chunk(self, data: bytes) -> None:
        self._files.store.files.add_chunk(self._record.id, self._chunks, self._files.sealer.seal(data))
        self._chunks += 1

    def close(self) -> FileRecord:
        """Store what is still buffered; the record as it will be shown, once completed."""
        if self._buffer:
            self._store_chunk(bytes(self._buffer))
            self._buffer.clear()
        return replace(self._record, status="processed", bytes=self._size, expires_at=None)

    def _accept(self, expires_after: int | None) -> FileRecord:
        record = self.close()
        if self._checker is not None:
            summary = self._checker.finish()
            deployment = self._files.store.get_deployment(summary.deployment)
            if deployment is not None and deployment.zero_data_retention:
                raise ZeroDataRetention(deployment.name)
            record = replace(
                record, lines=summary.lines, url=summary.url, deployment=summary.deployment,
                reserved_tokens=summary.reserved_tokens,
            )
        if expires_after is not None:
            record = replace(record, expires_at=record.created_at + check_expires_after(expires_after))
        else:
            self._files.check_room()
        self._files.store.files.complete(record)
        return record


class Files:
    def __init__(
        self, store: Store, sealer: Sealer, settings: Settings, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.sealer = sealer
        self.settings = settings
        self.clock = clock

    # -- writing ---------------------------------------------------------------------------------

    async def receive(self, principal_id: str | None, purpose: str, filename: str) -> Upload:
        """Start receiving a file for ``purpose`` (checked); its bytes follow."""
        check_purpose(purpose)
        now = self.clock()
        record = FileRecord(
            id=f"file-{uuid.uuid4().hex}", purpose=purpose, filename=filename, bytes=0,
            created_at=now, status=UPLOADING, expires_at=now + UNFINISHED_UPLOAD_SECONDS,
            created_by=principal_id,
        )
        await asyncio.to_thread(self.store.files.begin, record)
        return Upload(self, record, self.settings.batch.max_file_bytes)

    async def upload(
        self,
        principal_id: str | None,
        purpose: str,
        filename: str,
        chunks: AsyncIterator[bytes],
        expires_after: int | None,
    ) -> FileRecord:
        upload = await self.receive(principal_id, purpose, filename)
        try:
            async for chunk in chunks:
                await upload.write(chunk)
            return await upload.finish(expires_after)
        except BaseException:
            await upload.abort()
            raise

    def create_output(self, filename: str, lines: Iterable[bytes], expires_at: float | None) -> FileRecord:
        """A batch's output or error file, one JSON line per item of ``lines``."""
        now = self.clock()
        record = FileRecord(
            id=f"file-{uuid.uuid4()}", purpose=BATCH_OUTPUT, filename=filename, bytes=0,
            created_at=now, status=UPLOADING, expires_at=now + UNFINISHED_UPLOAD_SECONDS,
        )
        self.store.files.begin(record)
        upload = Upload(self, record, None)
        try:
            for line in lines:
                upload.add(line + b"\n")
            record = replace(upload.close(), expires_at=expires_at)
        except BaseException:
            self.store.files.delete(record.id)
            raise
        self.store.files.complete(record)
        return record

    def check_room(self) -> None:
        """Refuse a file kept until deleted when the resource holds the most it may."""
        limit = self.settings.batch.max_files
        if self.store.files.count_without_expiry() >= limit:
            raise InvalidRequest(
                f"This resource already holds {limit} files without an expiry (batch.max_files, "
                "as on Azure); nothing was stored. Delete files you no longer need "
                "(`stockade files delete ID`), or upload with expires_after.",
                code="too_many_files",
                param="file",
            )

    # -- reading ---------------------------------------------------------------------------------

    async def get(self, file_id: str) -> FileRecord:
        record = await asyncio.to_thread(self.store.files.get, file_id)
        if record is None:
            raise file_not_found(file_id)
        return record

    async def list(
        self, purpose: str | None, limit: int, after: str | None, order: str = "desc"
    ) -> tuple[list[FileRecord], bool]:
        return await asyncio.to_thread(
            lambda: self.store.files.page(purpose, limit, after, newest_first=order != "asc")
        )

    async def content(self, file_id: str) -> AsyncIterator[bytes]:
        """The file's bytes, a chunk at a time, opened as they are read."""
        await self.get(file_id)
        return self._opened_chunks(file_id)

    async def _opened_chunks(self, file_id: str) -> AsyncIterator[bytes]:
        seq = 0
        while (sealed := await asyncio.to_thread(self.store.files.chunk, file_id, seq)) is not None:
            yield await asyncio.to_thread(self.sealer.open, sealed)
            seq += 1

    def lines(self, file_id: str) -> Iterator[bytes]:
        """A batch input file's requests, one JSON line each (blank lines left out): for the
        batch runner, in a thread."""
        pending = b""
        seq = 0
        while (sealed := self.store.files.chunk(file_id, seq)) is not None:
            *complete, pending = (pending + self.sealer.open(sealed)).split(b"\n")
            yield from (line.strip() for line in complete if line.strip())
            seq += 1
        if pending.strip():
            yield pending.strip()

    # -- deleting --------------------------------------------------------------------------------

    async def delete(self, file_id: str) -> None:
        if not await asyncio.to_thread(self.store.files.delete, file_id):
            raise file_not_found(file_id)

    async def purge(self) -> int:
        """Delete the files whose expiry has passed (and uploads never finished); returns how many."""
        expired = await asyncio.to_thread(self.store.files.expired, self.clock())
        for file_id in expired:
            await asyncio.to_thread(self.store.files.delete, file_id)
        if expired:
            log.info("Deleted %d expired files", len(expired))
        return len(expired)

    async def purge_forever(self) -> None:
        """Purge every minute. The expiries are in the store, so a file that expires while no
        server runs is deleted by the purge the next one runs as it starts."""
        await every(PURGE_SECONDS, self.purge, Outage(log, "deleting expired files (they are deleted once it works again)"))

    # -- keys ------------------------------------------------------------------------------------

    async def rekey(self) -> int:
        """Reseal with the first key everything an older key sealed (file contents, batch
        requests and results); returns how many values were resealed. Afterwards the older keys
        may be removed from the configuration."""
        sealer = self.sealer
        return await asyncio.to_thread(
            self.store.files.reseal_all, sealer.sealing_id, lambda value: sealer.seal(sealer.open(value))
        )
