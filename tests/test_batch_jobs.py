"""Batch jobs in process, over the fake models: creation's checks, a batch's life from validating
to its files, the exact shapes of its output and error lines, cancelling, expiry, and backfill
under a deployment's rate limits. The runner is driven a round at a time (``step``), on clocks
the tests move: the resource's own runner polls once an hour here, so it never interferes."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import App, ManualClock, in_process
from fake_model import CHAT_MODEL
from stockade.access import Principal
from stockade.api.api_versions import filter_error_spelling
from stockade.batch.jobs import Batches, BatchView, batch_object
from stockade.batch.runner import BatchRunner
from stockade.errors import InvalidRequest, NotFound, PermissionDenied, ServiceError
from stockade.quotas import LocalLimiter
from stockade.store.batches import LineCounts, LineResult
from stockade.store.tables import batch_lines

IDLE_RUNNER = {"STOCKADE_BATCH__POLL_SECONDS": "3600"}


class Clock:
    """Seconds that pass only when a test says so."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    with in_process(tmp_path, **IDLE_RUNNER) as running:
        yield running


def line(custom_id: str, content: str = "Hello", deployment: str = "gpt-4o", **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id, "method": "POST", "url": "/chat/completions",
        "body": {"model": deployment, "messages": [{"role": "user", "content": content}], **body},
    }


TOO_LONG = "word " * 3000  # past the fake model's 2,048-token context: a 400 from the model


def upload(app: App, lines: list[dict[str, Any]]) -> str:
    data = b"".join(json.dumps(item).encode() + b"\n" for item in lines)

    async def chunks() -> AsyncIterator[bytes]:
        yield data

    async def send() -> str:
        record = await app.resource.files.upload("test", "batch", "input.jsonl", chunks(), None)
        return record.id

    return app.call(send)


def contents(app: App, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None

    async def read() -> bytes:
        return b"".join([chunk async for chunk in await app.resource.files.content(file_id)])

    return [json.loads(text) for text in app.call(read).splitlines()]


def admin(app: App) -> Principal:
    principal = app.resource.access.keys.authenticate(app.key)
    assert principal is not None
    return principal


def create(app: App, file_id: str, *, batches: Batches | None = None, principal: Principal | None = None,
           **options: Any) -> BatchView:
    async def make() -> BatchView:
        return await (batches or app.resource.batches).create(
            principal or admin(app), input_file_id=file_id,
            endpoint=options.pop("endpoint", "/chat/completions"),
            completion_window=options.pop("completion_window", "24h"), api_version="2024-10-21",
            **options,
        )

    return app.call(make)


async def time_stands_still(_: float) -> None:
    """A runner's sleep on a clock that only the test moves: lines paced over a window start at
    once, and the limiter alone decides which of them run."""


def runner(app: App, clock: Callable[[], float] | None = None, **batch: Any) -> BatchRunner:
    if batch:
        app.resource.settings.batch = app.resource.settings.batch.model_copy(update=batch)
    if clock is None:
        made = BatchRunner(app.resource, filter_error_spelling)
    else:
        made = BatchRunner(app.resource, filter_error_spelling, clock, time_stands_still)
    app.resource.inference.on_throttled = made.pause
    return made


def status(app: App, batch_id: str) -> dict[str, Any]:
    return batch_object(app.call(app.resource.batches.get, batch_id))


def run_to_end(app: App, work: BatchRunner, batch_id: str, rounds: int = 50) -> dict[str, Any]:
    for _ in range(rounds):
        app.call(work.step)
        shown = status(app, batch_id)
        if shown["status"] in ("completed", "failed", "expired", "cancelled"):
            return shown
    raise AssertionError(f"the batch never ended: {shown}")


def refused(app: App, file_id: str, **options: Any) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        create(app, file_id, **options)
    return caught.value


# -- a batch's life ------------------------------------------------------------------------------


def test_a_batch_goes_from_validating_through_in_progress_and_finalizing_to_completed(app: App) -> None:
    clock = Clock()
    batches = Batches(app.resource, clock)
    view = create(app, upload(app, [line("a"), line("b"), line("c")]), batches=batches, metadata={"job": "eval"})
    created = batch_object(view)
    assert created["status"] == "validating"
    assert created["request_counts"] == {"total": 0, "completed": 0, "failed": 0}
    assert created["created_at"] == int(clock.now) and created["expires_at"] == int(clock.now) + 86400
    assert all(created[f"{s}_at"] is None for s in ("in_progress", "finalizing", "completed", "failed",
                                                     "expired", "cancelling", "cancelled"))
    work = runner(app, clock, concurrency=2)
    clock.now += 1
    app.call(work.tend)
    started = status(app, view.record.id)
    assert started["status"] == "in_progress" and started["in_progress_at"] == int(clock.now)
    assert started["request_counts"] == {"total": 3, "completed": 0, "failed": 0}
    clock.now += 1
    assert app.call(work.run_lines) == 2
    assert status(app, view.record.id)["request_counts"] == {"total": 3, "completed": 2, "failed": 0}
    done = run_to_end(app, work, view.record.id)
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
    assert done["finalizing_at"] is not None and done["completed_at"] is not None
    assert done["in_progress_at"] <= done["finalizing_at"] <= done["completed_at"]
    assert done["metadata"] == {"job": "eval"} and done["model"] == "gpt-4o"
    assert done["error_file_id"] is None
    assert sorted(item["custom_id"] for item in contents(app, done["output_file_id"])) == ["a", "b", "c"]


def test_an_output_line_has_the_status_request_id_and_whole_body_of_the_call(app: App) -> None:
    view = create(app, upload(app, [line("only", max_tokens=3)]))
    done = run_to_end(app, runner(app), view.record.id)
    [output] = contents(app, done["output_file_id"])
    assert output["id"].startswith("batch_req_") and output["custom_id"] == "only"
    assert output["error"] is None
    assert output["response"]["status_code"] == 200 and output["response"]["request_id"]
    body = output["response"]["body"]
    assert body["object"] == "chat.completion" and body["model"] == CHAT_MODEL
    assert body["choices"][0]["message"]["content"] == "The sea is"
    assert body["usage"]["completion_tokens"] == 3


def test_a_line_the_model_refuses_is_an_http_failure_in_the_response_not_a_top_level_error(app: App) -> None:
    view = create(app, upload(app, [line("fine"), line("long", TOO_LONG)]))
    done = run_to_end(app, runner(app), view.record.id)
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": 2, "completed": 1, "failed": 1}
    [failure] = contents(app, done["error_file_id"])
    assert failure["custom_id"] == "long" and failure["error"] is None
    assert failure["response"]["status_code"] == 400 and failure["response"]["request_id"]
    assert failure["response"]["body"]["error"]["code"] == "context_length_exceeded"
    assert [item["custom_id"] for item in contents(app, done["output_file_id"])] == ["fine"]


def test_a_batch_whose_lines_all_fail_completes_with_only_an_error_file(app: App) -> None:
    view = create(app, upload(app, [line("x", TOO_LONG), line("y", TOO_LONG)]))
    done = run_to_end(app, runner(app), view.record.id)
    assert done["status"] == "completed"
    assert done["output_file_id"] is None
    assert done["request_counts"] == {"total": 2, "completed": 0, "failed": 2}
    assert sorted(item["custom_id"] for item in contents(app, done["error_file_id"])) == ["x", "y"]


def test_usage_records_of_batch_lines_carry_the_batch_id(app: App) -> None:
    view = create(app, upload(app, [line("a"), line("b")]))
    run_to_end(app, runner(app), view.record.id)
    app.flush_usage()
    records = [r for r, _ in app.resource.store.recent_usage(10, "gpt-4o", None)]
    assert len(records) == 2
    assert {r.batch_id for r in records} == {view.record.id}
    assert {r.status for r in records} == {200}


def test_lines_of_a_revoked_key_fail_with_a_top_level_error(app: App) -> None:
    key, _ = app.call(app.resource.create_application_key, "batcher", "openai-user")
    principal = app.resource.access.keys.principal(key.id)
    view = create(app, upload(app, [line("a")]), principal=principal)
    app.call(app.resource.revoke_key, key.id)
    done = run_to_end(app, runner(app), view.record.id)
    [failure] = contents(app, done["error_file_id"])
    assert failure["response"] is None
    assert failure["error"]["code"] == "principal_not_found"
    assert "no longer active" in failure["error"]["message"]


# -- cancel and expiry ---------------------------------------------------------------------------


def test_a_cancelled_batch_keeps_what_finished_and_cancels_the_rest(app: App) -> None:
    view = create(app, upload(app, [line(f"r{i}") for i in range(5)]))
    work = runner(app, concurrency=2)
    app.call(work.step)  # two lines run
    cancelling = batch_object(app.call(app.resource.batches.cancel, view.record.id))
    assert cancelling["status"] == "cancelling" and cancelling["cancelling_at"] is not None
    done = run_to_end(app, work, view.record.id)
    assert done["status"] == "cancelled" and done["cancelled_at"] is not None
    assert done["request_counts"] == {"total": 5, "completed": 2, "failed": 0}
    assert len(contents(app, done["output_file_id"])) == 2
    cancelled = contents(app, done["error_file_id"])
    assert len(cancelled) == 3
    assert {item["error"]["code"] for item in cancelled} == {"batch_cancelled"}
    assert all(item["response"] is None for item in cancelled)


def test_a_finished_batch_cannot_be_cancelled(app: App) -> None:
    view = create(app, upload(app, [line("a")]))
    run_to_end(app, runner(app), view.record.id)
    with pytest.raises(InvalidRequest, match="completed already"):
        app.call(app.resource.batches.cancel, view.record.id)


def test_at_the_end_of_its_window_a_batch_expires_keeping_the_results_so_far(app: App) -> None:
    clock = Clock()
    batches = Batches(app.resource, clock)
    view = create(app, upload(app, [line(f"r{i}") for i in range(5)]), batches=batches)
    work = runner(app, clock, concurrency=2)
    app.call(work.step)
    clock.now += 24 * 3600
    done = run_to_end(app, work, view.record.id)
    assert done["status"] == "expired" and done["expired_at"] == int(clock.now)
    assert done["completed_at"] is None
    assert done["request_counts"] == {"total": 5, "completed": 2, "failed": 0}
    assert len(contents(app, done["output_file_id"])) == 2
    expired = contents(app, done["error_file_id"])
    assert len(expired) == 3 and {item["error"]["code"] for item in expired} == {"batch_expired"}


# -- what creation refuses -----------------------------------------------------------------------


def test_a_batch_beyond_the_deployments_enqueued_token_quota_is_refused_with_token_limit_exceeded(app: App) -> None:
    app.call(lambda: app.resource.update_deployment("gpt-4o", batch_token_quota=500))
    first = upload(app, [line("a", max_tokens=300)])
    create(app, first)
    error = refused(app, upload(app, [line("b", max_tokens=300)]))
    assert error.status == 400 and error.code == "token_limit_exceeded"
    assert "token_limit_exceeded" in error.message and "--batch-token-quota" in error.message


def test_a_zero_retention_deployment_refuses_batches(app: App) -> None:
    file_id = upload(app, [line("a")])
    app.call(lambda: app.resource.update_deployment("gpt-4o", zero_data_retention=True))
    error = refused(app, file_id)
    assert error.status == 400 and error.code == "ZeroDataRetention"


def test_an_endpoint_other_than_the_files_url_is_refused(app: App) -> None:
    error = refused(app, upload(app, [line("a")]), endpoint="/embeddings")
    assert error.status == 400 and error.code == "url_mismatch"


def test_both_spellings_of_the_endpoint_are_accepted(app: App) -> None:
    view = create(app, upload(app, [line("a")]), endpoint="/v1/chat/completions")
    assert batch_object(view)["endpoint"] == "/v1/chat/completions"


def test_a_completion_window_other_than_24h_is_refused(app: App) -> None:
    error = refused(app, upload(app, [line("a")]), completion_window="48h")
    assert error.status == 400 and error.param == "completion_window"


def test_an_unknown_input_file_is_refused(app: App) -> None:
    with pytest.raises(NotFound):
        create(app, "file-nothing")


def test_a_file_naming_a_deployment_that_no_longer_exists_is_refused_with_model_not_found(app: App) -> None:
    file_id = upload(app, [line("a")])
    app.call(app.resource.delete_deployment, "gpt-4o")
    error = refused(app, file_id)
    assert error.status == 400 and error.code == "model_not_found"


def test_a_caller_who_may_not_call_the_deployment_may_not_batch_on_it(app: App) -> None:
    key, _ = app.call(app.resource.create_application_key, "narrow", "openai-user", "text-embedding-3-small")
    error = refused(app, upload(app, [line("a")]), principal=app.resource.access.keys.principal(key.id))
    assert isinstance(error, PermissionDenied)


def test_more_than_sixteen_metadata_pairs_are_refused(app: App) -> None:
    error = refused(app, upload(app, [line("a")]), metadata={f"k{i}": "v" for i in range(17)})
    assert error.param == "metadata"


# -- backfill ------------------------------------------------------------------------------------

WINDOW = 10


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[tuple[App, ManualClock]]:
    window = ManualClock()
    limiter = LocalLimiter(WINDOW, clock=window)
    # Capacity 6: 6,000 TPM and 36 RPM, so 1,000 tokens and 6 calls a window; batch lines may
    # take half of that.
    with in_process(tmp_path, (("gpt-4o", CHAT_MODEL, 6),), limiter=limiter,
                    STOCKADE_LIMITS__WINDOW_SECONDS=str(WINDOW), STOCKADE_BATCH__HEADROOM="0.5",
                    **IDLE_RUNNER) as running:
        yield running, window


def on(window: ManualClock) -> Callable[[], float]:
    """The limiter's clock in seconds, for the runner and the batches."""
    return lambda: window.now / 1000


def test_batch_lines_leave_the_headroom_to_interactive_calls(limited: tuple[App, ManualClock]) -> None:
    app, window = limited
    seconds = on(window)
    view = create(app, upload(app, [line(f"r{i}", max_tokens=50) for i in range(12)]),
                  batches=Batches(app.resource, seconds))
    work = runner(app, seconds, concurrency=12)
    app.call(work.step)
    # Three calls a window is the batch's share: the other lines wait for the next window.
    assert status(app, view.record.id)["request_counts"]["completed"] == 3
    assert app.call(work.step) == 0
    for _ in range(3):
        reply = app.azure().chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Hi"}], max_tokens=50
        )
        assert reply.choices[0].message.content
    window.next_window(WINDOW)
    app.call(work.step)
    assert status(app, view.record.id)["request_counts"]["completed"] == 6


def test_a_windows_batch_lines_are_spread_over_it_not_sent_at_its_start(limited: tuple[App, ManualClock]) -> None:
    app, window = limited
    seconds = on(window)
    view = create(app, upload(app, [line(f"r{i}", max_tokens=50) for i in range(3)]),
                  batches=Batches(app.resource, seconds))
    waited: list[float] = []

    async def wait(delay: float) -> None:
        waited.append(delay)
        window.sleep(delay)

    app.resource.settings.batch = app.resource.settings.batch.model_copy(update={"concurrency": 1})
    work = BatchRunner(app.resource, filter_error_spelling, seconds, wait)
    for _ in range(3):
        app.call(work.step)
    # The batch's share is 3 calls a window: after the first, the other two share its 10 seconds.
    assert waited == [5.0, 5.0]
    assert status(app, view.record.id)["request_counts"]["completed"] == 3


def test_an_interactive_call_throttled_holds_the_batch_lines_of_its_deployment(
    limited: tuple[App, ManualClock],
) -> None:
    import openai

    app, window = limited
    for _ in range(6):
        app.azure().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}], max_tokens=10)
    with pytest.raises(openai.RateLimitError):
        app.azure().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}], max_tokens=10)
    seconds = on(window)
    view = create(app, upload(app, [line("a", max_tokens=10)]), batches=Batches(app.resource, seconds))
    work = runner(app, seconds)
    with pytest.raises(openai.RateLimitError):
        app.azure().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}], max_tokens=10)
    app.call(work.tend)
    assert app.call(work.run_lines) == 0  # held: not even claimed
    window.next_window(WINDOW)
    assert app.call(work.run_lines) == 1
    assert status(app, view.record.id)["request_counts"]["completed"] == 1


def test_the_lines_of_a_local_model_wait_while_its_workers_are_taken(
    app: App, monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    view = create(app, upload(app, [line("a"), line("b")]), batches=Batches(app.resource, clock))
    work = runner(app, clock)
    pool = {"state": "ready", "workers": 1, "processes": 1, "busy": 0, "waiting": 1}

    async def health(backend: str, model: str) -> dict[str, Any]:
        return pool

    monkeypatch.setattr(app.resource.registry, "health", health)
    app.call(work.step)  # an interactive call waits for the one worker: no line is sent
    assert status(app, view.record.id)["request_counts"]["completed"] == 0
    pool.update(busy=0, waiting=0)
    clock.now += 1
    app.call(work.step)  # one worker free: one line at a time goes to it
    assert status(app, view.record.id)["request_counts"]["completed"] == 1


# -- more of the runner --------------------------------------------------------------------------


def test_a_batch_of_embeddings_lines_runs_on_an_embeddings_deployment(app: App) -> None:
    embedding = {"custom_id": "e", "method": "POST", "url": "/embeddings",
                 "body": {"model": "text-embedding-3-small", "input": "Hello"}}
    view = create(app, upload(app, [embedding]), endpoint="/embeddings")
    done = run_to_end(app, runner(app), view.record.id)
    [output] = contents(app, done["output_file_id"])
    assert output["response"]["body"]["object"] == "list"
    assert output["response"]["body"]["data"][0]["object"] == "embedding"


def response_line(custom_id: str, **body: Any) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/responses",
            "body": {"model": "gpt-4o", "input": "Hello", **body}}


def test_a_batch_of_responses_lines_writes_a_response_object_for_each(app: App) -> None:
    view = create(app, upload(app, [response_line("r-1"), response_line("r-2", max_output_tokens=3)]),
                  endpoint="/v1/responses")
    done = run_to_end(app, runner(app), view.record.id)
    outputs = {line["custom_id"]: line["response"] for line in contents(app, done["output_file_id"])}
    assert outputs["r-1"]["body"]["object"] == "response" and outputs["r-1"]["body"]["status"] == "completed"
    assert outputs["r-2"]["body"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_a_responses_batch_line_is_not_stored_a_second_time(app: App) -> None:
    view = create(app, upload(app, [response_line("r-1")]), endpoint="/v1/responses")
    done = run_to_end(app, runner(app), view.record.id)
    [output] = contents(app, done["output_file_id"])
    assert output["response"]["body"]["store"] is False
    with pytest.raises(ServiceError):
        app.call(app.resource.responses.stored.get, output["response"]["body"]["id"])


def test_a_responses_line_asking_for_a_built_in_tool_is_refused_at_upload(app: App) -> None:
    with pytest.raises(ServiceError) as caught:
        upload(app, [response_line("r-1", tools=[{"type": "web_search"}])])
    assert "tools[0].type" in caught.value.message


def test_a_batch_whose_input_file_is_deleted_before_it_starts_fails_saying_so(app: App) -> None:
    file_id = upload(app, [line("a")])
    view = create(app, file_id)
    app.call(app.resource.files.delete, file_id)
    done = run_to_end(app, runner(app), view.record.id)
    assert done["status"] == "failed" and done["failed_at"] is not None
    [error] = done["errors"]["data"]
    assert error["param"] == "input_file_id" and file_id in error["message"]


def test_a_batch_left_finalizing_by_a_runner_that_stopped_is_finished_by_another(app: App) -> None:
    clock = Clock(time.time())
    view = create(app, upload(app, [line("a")]), batches=Batches(app.resource, clock))
    work = runner(app, clock)
    app.call(work.step)  # the line runs
    # The runner that moved it to finalizing died before writing its files.
    assert app.resource.store.batches.transition(
        view.record.id, ("in_progress",), status="finalizing", finalizing_at=clock.now
    )
    app.call(work.step)
    assert status(app, view.record.id)["status"] == "finalizing"  # its lease has not run out yet
    clock.now += app.settings.batch.lease_seconds + 1
    app.call(work.step)
    done = status(app, view.record.id)
    assert done["status"] == "completed"
    assert [item["custom_id"] for item in contents(app, done["output_file_id"])] == ["a"]


def test_a_line_claimed_again_after_its_lease_ran_out_is_written_once_by_its_new_claim(app: App) -> None:
    view = create(app, upload(app, [line("a")]))
    lines = app.resource.store.batches
    app.call(runner(app).tend)
    now = time.time()
    [first] = lines.claim("first", now, now + 1, 10)
    assert lines.claim("second", now, now + 30, 10) == []  # leased
    [second] = lines.claim("second", now + 2, now + 32, 10)  # the first's lease ran out
    late = LineResult(first.batch_id, first.line, "failed", b"late")
    lines.finish([("first", late)])
    assert lines.counts([view.record.id]) == {}  # dropped: no longer the first's
    lines.finish([("second", LineResult(second.batch_id, second.line, "completed", b"done"))])
    assert lines.counts([view.record.id])[view.record.id] == LineCounts(completed=1, failed=0)


def test_deployments_take_zero_data_retention_and_a_batch_token_quota_from_the_command_line(app: App) -> None:
    created = app.cli_json("deployments", "create", "--name", "private", "--model", CHAT_MODEL,
                           "--capacity", "1", "--zero-data-retention")
    assert isinstance(created, dict)
    assert created["zero_data_retention"] is True and created["batch_token_quota"] is None
    updated = app.cli_json("deployments", "update", "private", "--no-zero-data-retention",
                           "--batch-token-quota", "1000")
    assert isinstance(updated, dict)
    assert updated["zero_data_retention"] is False and updated["batch_token_quota"] == 1000


def test_the_store_holds_batch_requests_and_results_only_sealed(app: App) -> None:
    secret = "the-patient-is-called-Ada-Lovelace"
    view = create(app, upload(app, [line("a", f"say:{secret}")]))
    done = run_to_end(app, runner(app), view.record.id)
    assert secret in json.dumps(contents(app, done["output_file_id"]))
    with app.resource.store.engine.connect() as connection:
        [(request, result)] = connection.execute(
            sa.select(batch_lines.c.request, batch_lines.c.result)
        ).all()
    assert secret.encode() not in request and secret.encode() not in result
    for stored in app.data_dir.glob("stockade.db*"):  # the database, its WAL and shared memory
        assert secret.encode() not in stored.read_bytes()
