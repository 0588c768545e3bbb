"""No usage record lost: while the store cannot be written, usage batches wait on local disk and
are written once each, in order, when it can again."""

from __future__ import annotations

import asyncio
import json
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from openai import AzureOpenAI
from tcp_proxy import tcp_proxy

from conftest import (
    API_VERSION,
    mock_upstream,
    postgres_schema_url,
    replica_env,
    run_cli,
    start_replicas,
    stop,
)
from stockade.store import Store, UsageRecord
from stockade.telemetry import UsageRecorder
from stockade.telemetry.spool import Spool, UsageBatch


def record(number: int) -> UsageRecord:
    return UsageRecord(
        ts=float(number), request_id=f"request-{number}", operation="ChatCompletions_Create",
        deployment="chat", model="m", key_id="k", status=200, prompt_tokens=1,
        completion_tokens=1, latency_ms=1.0,
    )


class FlakyStore:
    """The store, with the usage writes failing while ``down``, or failing only after their
    transaction committed while ``lost_reply`` (the connection dropped before the answer)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.down = False
        self.lost_reply = False

    def insert_usage(self, records: list[UsageRecord], batch_id: str | None = None) -> bool:
        if self.down:
            raise ConnectionRefusedError("database down")
        written = self.store.insert_usage(records, batch_id)
        if self.lost_reply:
            raise ConnectionResetError("connection reset after the commit")
        return written

    def forget_usage_batches(self, before: float) -> int:
        return self.store.forget_usage_batches(before)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path}/stockade.db")
    store.migrate()
    yield store
    store.close()


def request_ids(store: Store) -> list[str]:
    with store.engine.connect() as connection:
        return list(connection.execute(sa.text("SELECT request_id FROM usage_records ORDER BY id")).scalars())


def recorder_on(flaky: FlakyStore, spool: Path) -> UsageRecorder:
    return UsageRecorder(flaky, flush_seconds=60, spool=Spool(spool))  # type: ignore[arg-type]


def test_records_made_while_the_store_is_down_are_written_when_it_is_back(store: Store, tmp_path: Path) -> None:
    flaky = FlakyStore(store)
    recorder = recorder_on(flaky, tmp_path / "spool")

    async def scenario() -> None:
        flaky.down = True
        for number in range(5):
            recorder.add(record(number))
            await recorder.flush()
        assert len(list(Spool(tmp_path / "spool").oldest_first())) == 5
        flaky.down = False
        await recorder.flush()

    asyncio.run(scenario())
    assert request_ids(store) == [f"request-{n}" for n in range(5)]
    assert not Spool(tmp_path / "spool")


def test_records_made_after_the_store_is_back_are_written_after_the_spooled_ones(
    store: Store, tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "spool")
    spool.put(UsageBatch("older", [record(0), record(1)]))
    recorder = recorder_on(FlakyStore(store), tmp_path / "spool")

    async def scenario() -> None:
        recorder.add(record(2))
        await recorder.flush()

    asyncio.run(scenario())
    assert request_ids(store) == ["request-0", "request-1", "request-2"]


def test_a_batch_whose_commit_was_not_confirmed_is_written_once(store: Store, tmp_path: Path) -> None:
    flaky = FlakyStore(store)
    recorder = recorder_on(flaky, tmp_path / "spool")

    async def scenario() -> None:
        flaky.lost_reply = True
        recorder.add(record(0))
        await recorder.flush()  # written, but the writer saw an error: the batch is spooled
        flaky.lost_reply = False
        await recorder.flush()

    asyncio.run(scenario())
    assert request_ids(store) == ["request-0"]
    assert not Spool(tmp_path / "spool")


def test_a_previous_runs_spool_is_written_by_the_next(store: Store, tmp_path: Path) -> None:
    flaky = FlakyStore(store)
    flaky.down = True
    first = recorder_on(flaky, tmp_path / "spool")

    async def stopped_during_the_outage() -> None:
        first.add(record(0))
        await first.stop()

    asyncio.run(stopped_during_the_outage())
    assert request_ids(store) == []
    flaky.down = False
    asyncio.run(recorder_on(flaky, tmp_path / "spool").flush())
    assert request_ids(store) == ["request-0"]


def test_two_workers_replaying_one_spool_write_each_batch_once(store: Store, tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    for number in range(20):
        spool.put(UsageBatch(f"batch{number}", [record(number)]))
    workers = [recorder_on(FlakyStore(store), tmp_path / "spool") for _ in range(2)]
    threads = [threading.Thread(target=asyncio.run, args=(worker.flush(),)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(request_ids(store)) == sorted(f"request-{n}" for n in range(20))


def test_spool_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.put(UsageBatch("b", [record(0)]))
    (path,) = spool.oldest_first()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_records_wait_in_memory_when_the_spool_cannot_be_written_either(store: Store, tmp_path: Path) -> None:
    flaky = FlakyStore(store)
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")  # the spool's directory cannot be made: its path is a file
    recorder = recorder_on(flaky, blocked)

    async def scenario() -> None:
        flaky.down = True
        recorder.add(record(0))
        await recorder.flush()
        flaky.down = False
        blocked.unlink()
        await recorder.flush()

    asyncio.run(scenario())
    assert request_ids(store) == ["request-0"]


def test_a_written_batch_is_not_written_again(store: Store) -> None:
    assert store.insert_usage([record(0)], "batch")
    assert not store.insert_usage([record(0)], "batch")
    assert request_ids(store) == ["request-0"]


@pytest.mark.postgres
def test_a_written_batch_is_not_written_again_on_postgresql() -> None:
    with postgres_schema_url() as url:
        store = Store(url)
        store.migrate()
        try:
            assert store.insert_usage([record(0)], "batch")
            assert not store.insert_usage([record(0)], "batch")
            assert request_ids(store) == ["request-0"]
        finally:
            store.close()


def wait_until(condition: Callable[[], bool], failure: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, failure
        time.sleep(0.1)


@pytest.mark.postgres
@pytest.mark.server
def test_records_equal_calls_through_a_database_outage_under_traffic(tmp_path: Path) -> None:
    """A replica on PostgreSQL whose connection to the database is cut while calls keep coming,
    then restored: every call has its usage record, once."""
    with postgres_schema_url() as direct, mock_upstream() as upstream:
        url = sa.engine.make_url(direct)
        with tcp_proxy((url.host or "127.0.0.1", url.port or 5432)) as proxy:
            through_proxy = direct.replace(f":{url.port or 5432}/", f":{proxy.port}/")
            env = replica_env(tmp_path, through_proxy, upstream, None)
            run_cli(env, "deployments", "create", "--name", "chat", "--model", "mock-model", "--capacity", "1000")
            (replica,) = start_replicas(env, tmp_path, 1)
            spool = Spool(tmp_path / "spool")
            try:
                client = AzureOpenAI(azure_endpoint=replica.url + "/", api_key=replica.key,
                                     api_version=API_VERSION, max_retries=0)
                made = 0

                def call() -> None:
                    nonlocal made
                    client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
                    made += 1

                for _ in range(20):
                    call()
                proxy.cut()
                # Deployments and keys are held in memory: calls go on while the store is away.
                for _ in range(30):
                    call()
                wait_until(lambda: bool(spool), "no batch waited in the spool")
                proxy.restore()
                for _ in range(20):
                    call()
                wait_until(lambda: not spool, "the spool was never written to the store")
            finally:
                stop(replica.process)
        engine = sa.create_engine(direct)
        with engine.connect() as connection:
            recorded = list(connection.execute(sa.text(
                "SELECT request_id FROM usage_records WHERE deployment = 'chat'"
            )).scalars())
        engine.dispose()
        assert len(recorded) == len(set(recorded)) == made, missing(tmp_path / "replica-0.log", set(recorded))


def missing(log: Path, recorded: set[str]) -> str:
    """Which calls, in the order the replica's diagnostic log has them, have no record, and what
    else the replica logged: what a failure here needs to be understood."""
    served, other = [], []
    for text in log.read_text().splitlines():
        if not text.startswith("{"):
            other.append(text)
        elif (line := json.loads(text))["operationName"] == "ChatCompletions_Create":
            served.append(line["properties"]["requestId"])
    gaps = [str(number) for number, request_id in enumerate(served, 1) if request_id not in recorded]
    return f"{len(served)} calls served; no record of calls {', '.join(gaps)}\n" + "\n".join(other[-60:])
