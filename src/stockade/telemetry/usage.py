"""Per-call metadata, buffered in memory and written to the store in batches off the hot path."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from stockade.store import Store, UsageRecord
from stockade.telemetry.outage import Outage

log = logging.getLogger(__name__)

# If the store is down, keep at most this many records waiting rather than grow without bound.
MAX_PENDING = 100_000


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
    def __init__(
        self,
        store: Store,
        flush_seconds: float,
        priced: Callable[[UsageRecord], UsageRecord] | None = None,
    ) -> None:
        """``priced`` gives a record its cost; it runs when records are written, off the
        request path."""
        self._store = store
        self._flush_seconds = flush_seconds
        self._priced = priced
        self._pending: list[UsageRecord] = []
        self._task: asyncio.Task[None] | None = None
        self._outage = Outage(log, "writing usage records")
        self._dropped = 0  # during the current outage

    def add(self, record: UsageRecord) -> None:
        self._pending.append(record)
        if len(self._pending) > MAX_PENDING:
            if not self._dropped:
                log.error("usage store unavailable: dropping the oldest of %d waiting usage records",
                          MAX_PENDING)
            self._dropped += len(self._pending) - MAX_PENDING
            del self._pending[:-MAX_PENDING]

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            await self.flush()

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            await asyncio.to_thread(self._write, batch)
        except Exception:
            self._outage.failed()
            self._pending[:0] = batch
            return
        self._outage.succeeded(f"; {self._dropped} records were dropped" if self._dropped else "")
        self._dropped = 0

    def _write(self, batch: list[UsageRecord]) -> None:
        if self._priced is not None:
            batch = [self._priced(record) for record in batch]
        self._store.insert_usage(batch)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.flush()
