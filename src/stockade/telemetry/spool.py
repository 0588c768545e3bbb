"""Usage batches kept on local disk while the store cannot take them, replayed in order.

Each batch is one file, named so that names sort in the order the batches were made, and put in
place whole (private.write_private_file), so a crash leaves either the whole batch or none of it. The files
hold what usage records hold (metadata, never a body) and are readable by this user only.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from stockade.private import write_private_file
from stockade.store import UsageRecord

SUFFIX = ".jsonl"
FIELDS = frozenset(field.name for field in dataclasses.fields(UsageRecord))


@dataclass(frozen=True, slots=True)
class UsageBatch:
    """Records written together; the id makes writing the batch again a no-op (store.usage_batches)."""

    id: str
    records: list[UsageRecord]


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def put(self, batch: UsageBatch) -> Path:
        # Nanoseconds, then the process: several HTTP workers of a replica share the directory.
        name = f"{time.time_ns():020d}-{os.getpid()}-{batch.id}{SUFFIX}"
        return write_private_file(self.directory / name, "".join(
            orjson.dumps(dataclasses.asdict(record)).decode() + "\n" for record in batch.records
        ))

    def oldest_first(self) -> Iterator[Path]:
        if not self.directory.is_dir():
            return iter(())
        return iter(sorted(self.directory.glob(f"*{SUFFIX}")))

    def __bool__(self) -> bool:
        return next(self.oldest_first(), None) is not None

    @staticmethod
    def read(path: Path) -> UsageBatch:
        records = [
            # Fields a newer version wrote and this one does not know are left out.
            UsageRecord(**{k: v for k, v in orjson.loads(line).items() if k in FIELDS})
            for line in path.read_bytes().splitlines()
            if line
        ]
        return UsageBatch(path.stem.rsplit("-", 1)[-1], records)

    @staticmethod
    def remove(path: Path) -> None:
        path.unlink(missing_ok=True)  # another worker of the replica may have replayed it first
