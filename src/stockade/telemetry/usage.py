"""Per-call metadata, buffered in memory and written to the store in batches off the hot path;
spooled to local disk while the store is down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from stockade.store import Store, UsageRecord
from stockade.telemetry.outage import Outage
from stockade.telemetry.spool import Spool, UsageBatch

log = logging.getLogger(__name__)

# If the store and the spool's disk are both down, keep at most this many records in memory.
MAX_PENDING = 100_000
# How long the ids of written batches are kept, against writing a spooled batch twice: longer
# than any outage the spool is expected to ride out. Forgotten once an hour.
KEEP_BATCH_IDS_SECONDS = 7 * 86400
FORGET_EVERY_SECONDS = 3600


@dataclass(slots=True)
class Call:
    """Filled in as a request is handled; becomes a UsageRecord when the response has been sent."""

    request_id: str
    operation: str = "unknown"
    started: float = field(default_factory=time.perf_counter)
    deployment: str | None = None
    model: str | None = None
    key_id: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # "policy/direction/category/action" for each content filter decision: never the text.
    filter_decisions: list[str] = field(default_factory=list)
    batch_id: str | None = None  # set when the call runs a batch's line

    def record(self, status: int) -> UsageRecord:
        return UsageRecord(
            ts=time.time(),
            request_id=self.request_id,
            operation=self.operation,
            deployment=self.deployment,
            model=self.model,
            key_id=self.key_id,
            status=status,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            latency_ms=round(self.elapsed_ms(), 3),
            content_filter=",".join(self.filter_decisions) or None,
            batch_id=self.batch_id,
        )

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000


class UsageRecorder:
    """Usage records kept in memory and written in batches by a background task. While the store
    cannot take them, batches wait on local disk (``spool``) and are written, in order and once
    each, when it can again."""

    def __init__(
        self,
        store: Store,
        flush_seconds: float,
        spool: Spool,
        priced: Callable[[UsageRecord], UsageRecord] | None = None,
    ) -> None:
        """``priced`` gives a record its cost; it runs when records are written, off the
        request path."""
        self._store = store
        self._flush_seconds = flush_seconds
        self._spool = spool
        self._priced = priced
        self._pending: list[UsageRecord] = []
        self._flushing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._outage = Outage(log, "writing usage records (they wait in the spool, in the data directory)")
        self._dropped = 0  # during the current outage
        self._next_forget = 0.0

    def add(self, record: UsageRecord) -> None:
        self._pending.append(record)
        if len(self._pending) > MAX_PENDING:
            if not self._dropped:
                log.error("usage store and spool unavailable: dropping the oldest of %d waiting "
                          "usage records", MAX_PENDING)
            self._dropped += len(self._pending) - MAX_PENDING
            del self._pending[:-MAX_PENDING]

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            await self.flush()

    async def flush(self) -> None:
        """Write what waits in memory, and what waits in the spool (a previous run's too)."""
        async with self._flushing:
            records, self._pending = self._pending, []
            batch = UsageBatch(uuid.uuid4().hex, records) if records else None
            kept = await asyncio.to_thread(self._write, batch)
            if kept is not None:
                self._pending[:0] = kept.records

    def _write(self, batch: UsageBatch | None) -> UsageBatch | None:
        """In a thread, one at a time. ``batch`` goes to the store, unless batches wait in the
        spool: it goes behind them, and they go to the store oldest first. While the store fails,
        batches wait in the spool. Returns ``batch`` if it could be neither written nor spooled
        (the disk failed too): it waits in memory."""
        try:
            waiting = list(self._spool.oldest_first())
            if batch is not None:
                if waiting:
                    waiting.append(self._spool.put(batch))
                else:
                    self._insert(batch)
                batch = None
            for path in waiting:
                self._insert(self._spool.read(path))
                self._spool.remove(path)
        except Exception:
            self._outage.failed()
            if batch is not None:
                try:
                    self._spool.put(batch)
                except OSError:
                    return batch
            return None
        self._outage.succeeded(f"; {self._dropped} records were dropped" if self._dropped else "")
        self._dropped = 0
        now = time.time()
        if now >= self._next_forget:
            self._next_forget = now + FORGET_EVERY_SECONDS
            with contextlib.suppress(Exception):  # tried again in an hour; nothing waits on it
                self._store.forget_usage_batches(now - KEEP_BATCH_IDS_SECONDS)
        return None

    def _insert(self, batch: UsageBatch) -> None:
        records = batch.records
        if self._priced is not None:
            records = [self._priced(record) for record in records]
        self._store.insert_usage(records, batch.id)

    async def stop(self) -> None:
        if self._task is not None:
            # Not while it flushes: a flush cancelled mid-write would leave its thread writing
            # after the store is closed.
            async with self._flushing:
                self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()
