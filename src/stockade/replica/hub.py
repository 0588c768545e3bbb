"""The hub: what a replica's HTTP workers share, served to them on a Unix socket.

It runs in the replica's main process, on an event loop of its own in a thread, and holds:

- the rate-limit counters (a ``LocalLimiter``): each reservation is checked and charged in one
  step of the hub's loop, so calls admitted by any worker count against all of them, with the
  same bound as the Redis limiter: at most one reservation over a limit per window;
- the local models' worker processes (``ModelWorkers``), one pool per model with one bounded
  queue, whichever HTTP worker a call arrived on.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from stockade.backends.base import PoolSpec, PoolState
from stockade.backends.started import StartedOnce
from stockade.backends.worker import ModelWorkers
from stockade.errors import BackendUnavailable, ServiceError
from stockade.quotas import Bucket, Limit, LocalLimiter
from stockade.quotas.limits import Refusal
from stockade.replica import protocol
from stockade.tracebacks import without_messages

log = logging.getLogger(__name__)

Limits = tuple[str, int | None, int | None]  # a bucket's scope, tokens and requests per minute
Reply = Callable[[int, str, Any], None]  # request id, kind of reply, its data
ADMITTED, REFUSED = "admitted", "refused"


@functools.lru_cache(maxsize=4096)
def _bucket(scope: str, tokens_per_minute: int | None, requests_per_minute: int | None) -> Bucket:
    return Bucket(scope, Limit(tokens_per_minute, requests_per_minute), label=scope)


def _failure(exc: Exception) -> ServiceError:
    """What a worker is told of a failure: a service error as it is, anything else as a 503."""
    if isinstance(exc, ServiceError):
        return exc
    log.error("a model call through the hub failed\n%s", without_messages(exc))
    return BackendUnavailable(f"model error: {exc}")


class Hub:
    def __init__(
        self, path: Path, window_seconds: int, *, clock: Callable[[], int] | None = None
    ) -> None:
        """``clock`` (milliseconds) replaces the wall clock; tests use it to step through time."""
        self.path = path
        self.limiter = LocalLimiter(window_seconds, clock=clock)
        self._pools: StartedOnce[str, ModelWorkers] = StartedOnce()

    async def serve(self, stopping: asyncio.Event, ready: threading.Event) -> None:
        server = await asyncio.start_unix_server(self._connection, path=str(self.path))
        ready.set()
        try:
            await stopping.wait()
        finally:
            server.close()
            await self._pools.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One HTTP worker's requests, answered in the order they finish."""
        tasks: dict[int, asyncio.Task[None]] = {}
        frames = protocol.FrameWriter(writer)

        def reply(request_id: int, kind: str, data: Any) -> None:
            frames.send((request_id, kind, data))

        def spawn(request_id: int, work: Awaitable[None]) -> None:
            task = asyncio.ensure_future(work)
            tasks[request_id] = task
            task.add_done_callback(lambda _: tasks.pop(request_id, None))

        try:
            while True:
                request_id, op, args = await protocol.read(reader)
                if op == protocol.RESERVE:
                    # Inline, not a task: the check and the charge happen in one step of the loop.
                    reply(request_id, protocol.RESULT, self._admit(*args))
                elif op == protocol.SETTLE:
                    self.limiter.adjust(*args)
                elif op == protocol.POOL_START:
                    spawn(request_id, self._answer(request_id, self._started(args), reply))
                elif op == protocol.POOL_STATE:
                    spawn(request_id, self._answer(request_id, self._state(args), reply))
                elif op == protocol.POOL_CALL:
                    spawn(request_id, self._answer(request_id, self._call(*args), reply))
                elif op == protocol.POOL_STREAM:
                    name, method, payload = args
                    spawn(request_id, self._relay(request_id, name, method, payload, reply, frames))
                elif op == protocol.CANCEL and (task := tasks.get(args)) is not None:
                    task.cancel()  # stops the model at its next token
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the worker has gone (exited, or restarted by the supervisor)
        finally:
            for task in list(tasks.values()):
                task.cancel()
            frames.close()

    async def _answer(self, request_id: int, work: Awaitable[Any], reply: Reply) -> None:
        try:
            result = await work
        except Exception as exc:
            reply(request_id, protocol.ERROR, _failure(exc))
        else:
            reply(request_id, protocol.RESULT, result)

    def _admit(self, cost: int, limits: tuple[Limits, ...]) -> tuple[Any, ...]:
        """("admitted", minute, window, tokens left, requests left), or ("refused", wait in ms,
        kind, index of the refusing bucket): plain values, which the worker turns back into a
        reservation or Azure's 429 with its own buckets' names."""
        buckets = [_bucket(*limit) for limit in limits]
        outcome = self.limiter.admit(buckets, cost)
        if isinstance(outcome, Refusal):
            return REFUSED, outcome.wait_ms, outcome.kind, buckets.index(outcome.bucket)
        return ADMITTED, outcome.minute, outcome.window, outcome.remaining.tokens, outcome.remaining.requests

    async def _relay(
        self, request_id: int, name: str, method: str, payload: Any, reply: Reply,
        frames: protocol.FrameWriter,
    ) -> None:
        try:
            pool = await self._pool(name)
            async for item in pool.stream(method, payload):
                reply(request_id, protocol.ITEM, item)
                await frames.drain()
        except ConnectionError:
            raise  # the worker has gone; nobody to tell
        except Exception as exc:
            reply(request_id, protocol.ERROR, _failure(exc))
        else:
            reply(request_id, protocol.END, None)

    async def _started(self, spec: PoolSpec) -> None:
        """Start the model's pool once, however many workers ask at the same time. A pool
        started from another spec under the same name (a model file removed, then added again
        from another file) is replaced."""
        _, running = self._pools.status(spec.name)
        if running is not None and running.spec != spec:
            await self._pools.discard(spec.name)
        await self._pools.get(spec.name, lambda: self._start(spec))

    @staticmethod
    async def _start(spec: PoolSpec) -> ModelWorkers:
        pool = ModelWorkers(spec)
        await pool.start()
        log.info("model %s pool started for every worker of this replica", spec.name)
        return pool

    async def _pool(self, name: str) -> ModelWorkers:
        pool = await self._pools.started(name)
        if pool is None:
            raise BackendUnavailable(f"model {name} has not been started on this replica")
        return pool

    async def _call(self, name: str, method: str, payload: Any) -> Any:
        return await (await self._pool(name)).call(method, payload)

    async def _state(self, name: str) -> PoolState:
        status, pool = self._pools.status(name)
        if pool is not None:
            return await pool.state()
        # Never started, or its start is under way or raised: no worker runs either way.
        return {"state": "failed" if status == "failed" else "starting", "workers": 0,
                "processes": 0, "busy": 0, "waiting": 0}


class HubThread:
    """The hub on an event loop of its own, in a thread of the replica's main process (whose main
    thread supervises the HTTP workers)."""

    def __init__(self, path: Path, window_seconds: int) -> None:
        self.hub = Hub(path, window_seconds)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="stockade-hub", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise RuntimeError(f"the replica's hub did not start: {self._failure}")

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stopping = asyncio.Event()
            await self.hub.serve(self._stopping, self._ready)

        try:
            asyncio.run(main())
        except Exception as exc:
            self._failure = exc
            self._ready.set()

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout=30)
