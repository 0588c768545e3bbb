"""A background task failing over and over is logged once when it starts failing and once when
it works again, with a count, not once per attempt."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from stockade.store import Store, UsageRecord
from stockade.telemetry import UsageRecorder
from stockade.telemetry.outage import Outage
from stockade.telemetry.spool import Spool

log = logging.getLogger("test.outage")


def attempt(outage: Outage, works: bool) -> None:
    try:
        if not works:
            raise ConnectionRefusedError("database down")
    except ConnectionRefusedError:
        outage.failed()
    else:
        outage.succeeded()


def test_an_outage_is_logged_when_it_begins_and_when_it_ends(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    outage = Outage(log, "polling the store", clock=lambda: now[0])
    for works in (True, False, False, False, False, True, True):
        attempt(outage, works)
        now[0] += 0.5
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "polling the store failed; retrying, and logging again only once it works",
        "polling the store works again, after 4 failed attempts over 2.0 s",
    ]
    assert caplog.records[0].exc_info is not None  # the first error's traceback, once


class DownStore:
    """A store whose usage table cannot be written until it comes back."""

    def __init__(self, store: Store) -> None:
        self.store, self.down = store, True

    def insert_usage(self, batch: list[UsageRecord], batch_id: str | None = None) -> bool:
        if self.down:
            raise ConnectionRefusedError("database down")
        return self.store.insert_usage(batch, batch_id)

    def forget_usage_batches(self, before: float) -> int:
        return self.store.forget_usage_batches(before)


def test_the_usage_writer_logs_an_outage_once_and_loses_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(f"sqlite:///{tmp_path}/stockade.db")
    store.migrate()
    down = DownStore(store)
    recorder = UsageRecorder(down, flush_seconds=60, spool=Spool(tmp_path / "spool"))  # type: ignore[arg-type]

    async def scenario() -> None:
        for attempt_number in range(10):
            recorder.add(UsageRecord(ts=0.0, request_id=f"r{attempt_number}", operation="op",
                                     deployment=None, model=None, key_id=None, status=200,
                                     prompt_tokens=0, completion_tokens=0, latency_ms=1.0))
            await recorder.flush()
        down.down = False
        await recorder.flush()

    asyncio.run(scenario())
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 2
    assert len(store.recent_usage(100)) == 10
