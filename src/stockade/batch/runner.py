"""The replicas' batch worker: expands new batches into lines, runs the lines through the core as
backfill on their deployment, and writes each batch's output and error files at its end.

Every replica runs one: in its one process, or with several HTTP workers in its batch process
(replica/batches.py). All progress lives in the store, so any number of them share the work, and
one that dies (SIGKILL included) loses nothing: its lines' leases run out and another runner, or
this one restarted, claims them again. Each round claims up to
``batch.concurrency`` lines, runs them at once, keeps their leases alive while they run, and
writes their results in one transaction.

Batch lines run as backfill: the core admits them against their deployment's limit less
``batch.headroom`` (core/inference.py), so interactive calls always find room. A line refused
with 429 is no failure: it goes back to wait, and its deployment's lines wait out the
retry-after; so do they when an interactive call in the same process is throttled (elsewhere, the
backfill limit, lower than the one that throttled it, refuses them on its own). Lines admitted are
spread over each window rather than sent at its start (batch/pacing.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import orjson

from stockade.access import Permission, Principal
from stockade.backends.registry import LOCAL
from stockade.batch.jsonl import REQUEST_TYPES
from stockade.batch.pacing import Pacer
from stockade.errors import (
    ContentFiltered,
    InnerErrorSpelling,
    InvalidRequest,
    PermissionDenied,
    ServiceError,
    TooManyRequests,
)
from stockade.requests import ChatRequest, EmbeddingRequest, parse
from stockade.responses.request import ResponseRequest, parse_request
from stockade.store import BatchRecord
from stockade.store.batches import (
    CANCELLED,
    CANCELLING,
    COMPLETED,
    EXPIRED,
    FAILED,
    FINALIZING,
    IN_PROGRESS,
    LINE_COMPLETED,
    LINE_FAILED,
    NOT_RUN,
    VALIDATING,
    ClaimedLine,
    Line,
    LineResult,
    Stored,
)
from stockade.telemetry import Call, metrics
from stockade.telemetry.outage import Outage
from stockade.tracebacks import without_messages

if TYPE_CHECKING:
    from stockade.core.inference import Answer
    from stockade.core.resource import Resource

log = logging.getLogger(__name__)

# The error lines of requests that never ran, in OpenAI's words.
NOT_RUN_ERRORS = {
    "expired": ("batch_expired", "This request could not be executed before the completion window expired."),
    "cancelled": ("batch_cancelled", "This request was not executed because the batch was cancelled."),
}
# How long a local model's lines wait before looking again at whether its workers are free.
TAKEN_MODEL_WAIT_MS = 100
PRINCIPAL_GONE = (
    "principal_not_found",
    "The key or identity that created this batch is no longer active (revoked or deleted), so "
    "its remaining requests were not run. Create the batch again with an active key.",
)


class BatchRunner:
    def __init__(
        self,
        resource: Resource,
        spelling: Callable[[str | None], InnerErrorSpelling],
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``spelling`` says how a content-filtered line's error is spelled for the api-version
        its batch was created with (the web layer knows which); ``sleep`` is how lines wait for
        their turn in a window (``clock``'s time, when tests set it)."""
        self.resource = resource
        self.spelling = spelling
        self.store = resource.store.batches
        self.settings = resource.settings.batch
        self.clock = clock
        self._paused: dict[str, float] = {}  # deployment: until when its lines wait
        self._on_local_model: dict[str, int] = {}  # deployment: its lines running here now
        self._batches: dict[str, BatchRecord] = {}  # what lines need of their batch, which never changes
        self._task: asyncio.Task[None] | None = None
        self._next_tend = 0.0
        self._ran = 0  # lines the last round ran
        self._pacer = Pacer(resource.settings.limits.window_seconds, clock, sleep)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run_forever())

    async def stop(self) -> None:
        """Stop at once: lines running here are left to their leases, and run again elsewhere."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def pause(self, deployment: str, wait_ms: int) -> None:
        """Hold the deployment's lines for ``wait_ms``: its rate limits have no room now."""
        until = self.clock() + wait_ms / 1000
        self._paused[deployment] = max(until, self._paused.get(deployment, 0.0))

    async def _run_forever(self) -> None:
        outage = Outage(log, "running batch jobs (their progress is in the store; they resume)")
        while True:
            try:
                ran = await self.step()
            except Exception:
                outage.failed()
                ran = 0
            else:
                outage.succeeded()
            if not ran:
                await asyncio.sleep(self._idle_seconds())

    def _idle_seconds(self) -> float:
        """Until the next poll, or sooner when a held deployment's window ends: its lines'
        share of the next window is not to be lost waiting."""
        now = self.clock()
        ends = [until - now for until in self._paused.values() if until > now]
        return min([self.settings.poll_seconds, *ends])

    async def step(self) -> int:
        """One round: every batch's own changes (expansion, expiry, cancelling, its files), then
        up to ``concurrency`` lines run and their results written; returns how many lines ran.
        While lines keep running, the batches are tended once a poll, not every round: counting
        every batch's lines left is the runner's costliest query."""
        now = self.clock()
        if now >= self._next_tend or not self._ran:
            self._next_tend = now + self.settings.poll_seconds
            await self.tend()
        self._ran = await self.run_lines()
        return self._ran

    # -- batches --------------------------------------------------------------------------------

    async def tend(self) -> None:
        for record, left in await asyncio.to_thread(self.store.active):
            now = self.clock()
            if record.status == VALIDATING:
                await self._expand(record)
            elif record.status == IN_PROGRESS and now >= record.expires_at:
                if await asyncio.to_thread(self.store.expire, record.id, now):
                    await self._finalize(record.id)
            elif record.status == IN_PROGRESS and not left:
                if await asyncio.to_thread(
                    self.store.transition, record.id, (IN_PROGRESS,), status=FINALIZING, finalizing_at=now
                ):
                    await self._finalize(record.id)
            elif record.status == CANCELLING:
                if not await asyncio.to_thread(self.store.cancel_lines, record.id, now):
                    await self._finalize(record.id)
            elif record.status == FINALIZING and (record.finalizing_at or 0) + self.settings.lease_seconds < now:
                await self._finalize(record.id)  # its finalizer stopped before the end

    async def _expand(self, record: BatchRecord) -> None:
        """Store the input file's lines, sealed, and set the batch in progress; a file that is
        gone or cannot be opened fails the batch."""
        now = self.clock()
        try:
            await self.resource.files.get(record.input_file_id)
            await asyncio.to_thread(self.store.expand, record.id, self._lines(record), now)
        except ServiceError as error:
            errors = [{"code": error.code, "message": error.message, "param": "input_file_id", "line": None}]
            await asyncio.to_thread(
                self.store.transition, record.id, (VALIDATING,),
                status=FAILED, failed_at=now, errors=json.dumps(errors),
            )

    def _lines(self, record: BatchRecord) -> Iterator[Line]:
        seal = self.resource.files.sealer.seal
        for number, raw in enumerate(self.resource.files.lines(record.input_file_id)):
            request = orjson.loads(raw)  # checked at upload
            yield Line(number, str(request["custom_id"]), seal(orjson.dumps(request["body"])))

    async def _finalize(self, batch_id: str) -> None:
        """Write the output file (lines that succeeded) and the error file (the rest), each only
        if it has lines, then end the batch; a replica that loses the race removes its files."""
        record = await asyncio.to_thread(self.store.get, batch_id)
        if record is None or record.status not in (FINALIZING, CANCELLING):
            return
        expires_at = None if record.output_expires_after is None else self.clock() + record.output_expires_after
        output = await asyncio.to_thread(self._file, record, (LINE_COMPLETED,), "output", expires_at)
        failed = await asyncio.to_thread(self._file, record, (LINE_FAILED, *NOT_RUN), "error", expires_at)
        now = self.clock()
        ended: dict[str, Any]
        if record.status == CANCELLING:
            ended = {"status": CANCELLED, "cancelled_at": now}
        elif record.expired_at is not None:
            ended = {"status": EXPIRED}
        else:
            ended = {"status": COMPLETED, "completed_at": now}
        if not await asyncio.to_thread(
            self.store.transition, batch_id, (record.status,), output_file_id=output, error_file_id=failed, **ended
        ):
            for file_id in (output, failed):
                if file_id is not None:
                    await self.resource.files.delete(file_id)
        self._batches.pop(batch_id, None)

    def _file(self, record: BatchRecord, states: tuple[str, ...], kind: str, expires_at: float | None) -> str | None:
        if not self.store.has_lines(record.id, states):
            return None
        lines = (self._shown(stored) for stored in self.store.finished(record.id, states))
        return self.resource.files.create_output(f"{record.id}_{kind}.jsonl", lines, expires_at).id

    def _shown(self, stored: Stored) -> bytes:
        if stored.result is not None:
            return self.resource.files.sealer.open(stored.result)
        code, message = NOT_RUN_ERRORS[stored.state]
        return _error_line(stored.custom_id, code, message)

    # -- lines ----------------------------------------------------------------------------------

    async def run_lines(self) -> int:
        now = self.clock()
        waiting = [name for name, until in self._paused.items() if until > now]
        claim = uuid.uuid4().hex
        lease = self.settings.lease_seconds
        lines = await asyncio.to_thread(
            self.store.claim, claim, now, now + lease, self.settings.concurrency, waiting
        )
        if not lines:
            return 0
        tasks = [asyncio.ensure_future(self._run(line)) for line in lines]
        try:
            running = set(tasks)
            while running:
                _, running = await asyncio.wait(running, timeout=lease / 3)
                if running:
                    await asyncio.to_thread(self.store.renew, [claim], self.clock() + lease)
        finally:
            for task in tasks:
                task.cancel()
        outcomes = [task.result() for task in tasks]
        metrics.batch_lines(None if r is None else r.state for r in outcomes)
        await asyncio.to_thread(self.store.finish, [(claim, r) for r in outcomes if r is not None])
        await asyncio.to_thread(
            self.store.release, [line for line, r in zip(lines, outcomes, strict=True) if r is None]
        )
        return len(lines)

    async def _run(self, line: ClaimedLine) -> LineResult | None:
        """The line run, as its result; None if its deployment had no room (it runs later)."""
        batch = await self._batch(line.batch_id)
        principal = self.resource.access.principal(batch.created_by, batch.created_by_tenant)
        if principal is None:
            return self._result(line, LINE_FAILED, _error_line(line.custom_id, *PRINCIPAL_GONE))
        call = Call(str(uuid.uuid4()), batch_id=batch.id, key_id=principal.id)
        try:
            return await self._outcome(line, batch, call, principal)
        finally:
            metrics.tokens(
                call.deployment, call.model, metrics.key_label(principal), call.prompt_tokens, call.completion_tokens
            )

    async def _outcome(
        self, line: ClaimedLine, batch: BatchRecord, call: Call, principal: Principal
    ) -> LineResult | None:
        try:
            async with self._model_room(batch.deployment) as room:
                if not room:
                    self.pause(batch.deployment, TAKEN_MODEL_WAIT_MS)
                    return None
                await self._pacer.wait(batch.deployment)
                answer = await self._call(batch, self.resource.files.sealer.open(line.request), call, principal)
        except TooManyRequests as refused:
            self.pause(batch.deployment, refused.retry_after_ms)
            return None
        except ContentFiltered as error:
            error.spelling = self.spelling(batch.api_version)
            return self._failed(line, call, error)
        except ServiceError as error:
            return self._failed(line, call, error)
        except Exception as exc:
            log.error("batch %s line %d failed\n%s", batch.id, line.line, without_messages(exc))
            return self._failed(line, call, ServiceError(
                f"The server had an error while running this request (request id "
                f"{call.request_id}). Its log has the details; report the request id if it persists."
            ))
        self._pacer.admitted(batch.deployment, answer.remaining, call.prompt_tokens + call.completion_tokens)
        assert isinstance(answer.content, dict), "a call that does not stream"
        self.resource.usage.add(call.record(200))
        response = {"status_code": 200, "request_id": call.request_id, "body": answer.content}
        return self._result(line, LINE_COMPLETED, _output_line(line.custom_id, response, None))

    @contextlib.asynccontextmanager
    async def _model_room(self, name: str) -> AsyncIterator[bool]:
        """Whether a line may go to its deployment's model now. A local model's workers run one
        request each and queue the rest, so a line goes to one only when a worker is free and no
        caller waits, and no more of them than it has workers: an interactive call then waits
        at most for a line already running, never for a queue of them. Upstreams queue nothing
        of ours; their rate limits are the backfill's business."""
        deployment = self.resource.deployment(name)
        if deployment.backend != LOCAL:
            yield True
            return
        pool = await self.resource.registry.health(LOCAL, deployment.model)
        mine = self._on_local_model.get(name, 0)
        if pool["processes"] and (pool["waiting"] or pool["busy"] >= pool["workers"] or mine >= pool["workers"]):
            yield False
            return
        self._on_local_model[name] = mine + 1
        try:
            yield True
        finally:
            self._on_local_model[name] -= 1

    async def _call(self, batch: BatchRecord, raw: bytes, call: Call, principal: Principal) -> Answer:
        """What the data plane does for a call (api/inference.py), for a line."""
        request_type = REQUEST_TYPES[batch.endpoint]
        call.operation = OPERATIONS[request_type]
        request = parse_request(raw) if request_type is ResponseRequest else parse(request_type, raw)
        deployment = self.resource.deployment(batch.deployment)
        call.deployment, call.model = deployment.name, deployment.model
        _may_call(principal, deployment.name)
        if getattr(request, "stream", None):
            raise InvalidRequest("A batch line cannot stream; leave stream out.", param="stream")
        screen = self.resource.safety.screen(deployment)
        inference = self.resource.inference
        if isinstance(request, ResponseRequest):
            # The output file holds the response: a batch line's is not stored a second time.
            answer = await self.resource.responses.create(
                deployment, request.model_copy(update={"store": False}), call, principal, screen,
                spelling=self.spelling(batch.api_version),
                may_read=lambda name: _may_call(principal, name),
            )
        elif isinstance(request, ChatRequest):
            answer = await inference.generate(deployment, request, call, principal, screen)
        else:
            answer = await inference.embed(deployment, request, call, principal, screen)
        return answer

    def _failed(self, line: ClaimedLine, call: Call, error: ServiceError) -> LineResult:
        """A failure at the HTTP level: its status and body, in the response as a caller of the
        same request would have had them."""
        self.resource.usage.add(call.record(error.status))
        response = {"status_code": error.status, "request_id": call.request_id, "body": error.body()}
        return self._result(line, LINE_FAILED, _output_line(line.custom_id, response, None))

    def _result(self, line: ClaimedLine, state: str, shown: bytes) -> LineResult:
        return LineResult(line.batch_id, line.line, state, self.resource.files.sealer.seal(shown))

    async def _batch(self, batch_id: str) -> BatchRecord:
        record = self._batches.get(batch_id)
        if record is None:
            record = await asyncio.to_thread(self.store.get, batch_id)
            assert record is not None, "a batch with lines is never deleted"
            self._batches[batch_id] = record
        return record


# The operation each kind of line is metered as, as its data-plane call would be.
OPERATIONS = {ChatRequest: "ChatCompletions_Create", EmbeddingRequest: "Embeddings_Create",
              ResponseRequest: "Responses_Create"}


def _may_call(principal: Principal, deployment: str) -> None:
    if not principal.allows(Permission.INFERENCE, deployment):
        raise PermissionDenied()


def _output_line(custom_id: str, response: dict[str, Any] | None, error: dict[str, str] | None) -> bytes:
    return orjson.dumps(
        {"id": f"batch_req_{uuid.uuid4().hex}", "custom_id": custom_id, "response": response, "error": error},
        option=orjson.OPT_SERIALIZE_NUMPY,  # embeddings are numpy arrays, as the data plane writes them
    )


def _error_line(custom_id: str, code: str, message: str) -> bytes:
    """A failure that is not an HTTP one (the request never ran): the top-level error."""
    return _output_line(custom_id, None, {"code": code, "message": message})
