"""Model inference in child processes, so the event loop never waits on a model.

Each child loads one *runner* (an object whose methods do the work) and serves one request at a
time over a pipe. Plain methods return one result; generator methods stream items and stop early
when the parent sends a cancel message, which is how a client that disconnects stops generation.
Requests queue for a free child up to a bound; past it callers get 429 at once.

The pool heals: a child that dies (killed, crashed, out of memory) is reaped and replaced, and a
replacement that fails to load is tried again with backoff (0.5 s doubling to 30 s), each failure
logged. A request is never handed to a dead child: one found dead in the idle queue is dropped,
and a request whose pipe turns out broken never reached its child, so it goes to the next. While
no child runs, callers wait at most ``wait_seconds`` (none at all once every load has failed) and
then get 503 with a retry hint, never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import logging
import multiprocessing
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from stockade.backends.base import PoolSpec, PoolState, PoolStateName
from stockade.config import LOG_FORMAT
from stockade.errors import BackendUnavailable, ServiceError, TooManyRequests
from stockade.tracebacks import without_messages

log = logging.getLogger(__name__)

_CALL, _STREAM, _CANCEL = "call", "stream", "cancel"
_READY, _RESULT, _ITEM, _END, _ERROR = "ready", "result", "item", "end", "error"
_LOST = "lost"  # not from a child: what a request hears when its child died
# Backoff between attempts to load a worker that keeps failing: a broken model costs a process
# start every 30 s at most, and a passing fault (memory, a file being replaced) heals quickly.
RESTART_DELAY, RESTART_DELAY_MAX = 0.5, 30.0
REAP_SECONDS = 10.0  # a killed process is gone well within this, unless the kernel is stuck


def _load_runner(path: str, options: dict[str, Any]) -> Any:
    module_name, _, class_name = path.partition(":")
    return getattr(importlib.import_module(module_name), class_name)(**options)


def _child_main(conn: Connection, runner_path: str, options: dict[str, Any], log_level: int) -> None:
    # A spawned process starts with logging unconfigured: its warnings reach stderr bare, and the
    # models' debug log (llama.cpp's loading, say) only when the server's log level asks for it.
    if log_level <= logging.DEBUG:
        logging.basicConfig(level=log_level, format=LOG_FORMAT)
    try:
        runner = _load_runner(runner_path, options)
    except Exception as exc:  # reported to the parent, which refuses to start
        conn.send((_ERROR, None, f"{type(exc).__name__}: {exc}"))
        return
    conn.send((_READY, None, None))
    while True:
        try:
            kind, job_id, method, payload = conn.recv()
        except EOFError:
            return
        if kind == _CANCEL:
            continue  # the job it names has already finished
        try:
            if kind == _CALL:
                conn.send((_RESULT, job_id, getattr(runner, method)(payload)))
                continue
            generator = getattr(runner, method)(payload)
            for item in generator:
                if conn.poll() and _cancelled(conn.recv(), job_id):
                    generator.close()
                    break
                conn.send((_ITEM, job_id, item))
            conn.send((_END, job_id, None))
        except ServiceError as exc:
            conn.send((_ERROR, job_id, exc))
        except Exception as exc:
            log.error("model runner failed\n%s", without_messages(exc))
            conn.send((_ERROR, job_id, f"{type(exc).__name__}: {exc}"))


def _cancelled(message: tuple[Any, ...], job_id: int) -> bool:
    return bool(message[0] == _CANCEL and message[1] == job_id)


@dataclass(eq=False)
class _Child:
    index: int
    conn: Connection
    process: Any
    reader: threading.Thread | None = None
    job: _Job | None = None
    alive: bool = True  # until the pool notices it has gone; then it is never used again


@dataclass(eq=False)
class _Job:
    id: int
    messages: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)
    finished: bool = False


@dataclass(eq=False)
class _Slot:
    """One of the pool's places for a child: the running child, or what its loading went like."""

    child: _Child | None = None
    failure: str | None = None  # why the last load failed; cleared when one succeeds
    retry_at: float = 0.0  # monotonic time of the next load, while failing
    loading: Any = None  # the process being loaded, so that closing the pool can kill it
    task: asyncio.Task[None] | None = None  # the restart under way


class ModelWorkers:
    """A pool of child processes running one model runner."""

    def __init__(self, spec: PoolSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self._runner = spec.runner
        self._options = spec.options
        self._queue_size = spec.queue_size
        self._wait_seconds = spec.wait_seconds
        self._context = multiprocessing.get_context("spawn")
        self._ids = itertools.count(1)
        self._idle: asyncio.Queue[_Child] = asyncio.Queue()
        self._slots = [_Slot() for _ in range(spec.processes)]
        self._waiting = 0
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()  # set and replaced when waiting callers must look again

    async def start(self) -> None:
        """Load every worker once; those that fail go on trying in the background, so a pool
        that starts broken heals like one that breaks later (its callers get 503 meanwhile)."""
        self._loop = asyncio.get_running_loop()
        loaded = await asyncio.gather(*(self._load(i) for i in range(len(self._slots))))
        for index, ok in enumerate(loaded):
            if not ok:
                self._heal(index, now=False)

    async def state(self) -> PoolState:
        running = sum(slot.child is not None for slot in self._slots)
        name: PoolStateName
        if running:
            name = "ready"
        elif self._failing():
            name = "failed"
        else:
            name = "starting"
        # The idle queue may still hold a child that died idle: never count fewer than none busy.
        busy = max(0, running - self._idle.qsize())
        return {"state": name, "workers": running, "processes": len(self._slots), "busy": busy,
                "waiting": self._waiting}

    def _failing(self) -> bool:
        """No worker runs and every load so far has failed: waiting would not help."""
        return all(slot.child is None and slot.failure is not None for slot in self._slots)

    # -- loading and restarting -------------------------------------------------------------

    async def _load(self, index: int) -> bool:
        """One attempt to start the slot's worker; a failure is recorded, logged, not raised."""
        slot = self._slots[index]
        try:
            child = await self._spawn(index)
        except BackendUnavailable as exc:
            slot.failure = exc.message
            self._changed()
            return False
        slot.failure = None
        slot.child = child
        self._idle.put_nowait(child)
        return True

    async def _spawn(self, index: int) -> _Child:
        parent_conn, child_conn = self._context.Pipe()
        process = self._context.Process(
            target=_child_main,
            args=(child_conn, self._runner, self._options, logging.getLogger().getEffectiveLevel()),
            name=f"stockade-{self.name}-{index}",
            daemon=True,
        )
        process.start()
        child_conn.close()
        self._slots[index].loading = process
        try:
            kind, _, detail = await asyncio.to_thread(parent_conn.recv)
        except EOFError:
            await asyncio.to_thread(process.join, REAP_SECONDS)  # its exit code says why
            kind, detail = _ERROR, f"its process exited while loading (exit code {process.exitcode})"
        except BaseException:  # the pool is closing while this worker loads
            process.kill()
            process.join(REAP_SECONDS)
            parent_conn.close()
            raise
        finally:
            self._slots[index].loading = None
        if kind != _READY:
            await asyncio.to_thread(_reap, process)
            parent_conn.close()
            raise BackendUnavailable(f"loading failed: {detail}")
        child = _Child(index, parent_conn, process)
        child.reader = threading.Thread(
            target=self._read, args=(child,), name=f"{self.name}-reader-{index}", daemon=True
        )
        child.reader.start()
        return child

    def _heal(self, index: int, *, now: bool) -> None:
        slot = self._slots[index]
        if not self._closed and (slot.task is None or slot.task.done()):
            slot.task = asyncio.get_running_loop().create_task(self._keep_loading(index, now))

    async def _keep_loading(self, index: int, now: bool) -> None:
        """Load the slot's worker until it runs: at once after a death, then with backoff."""
        slot = self._slots[index]
        if now and await self._load(index):
            return
        delay = RESTART_DELAY
        while not self._closed:
            log.error(
                "model %s worker %d: %s; trying again in %.1f s",
                self.name, index, slot.failure, delay,
            )
            slot.retry_at = time.monotonic() + delay
            await asyncio.sleep(delay)
            if await self._load(index):
                log.info("model %s worker %d is running again", self.name, index)
                return
            delay = min(delay * 2, RESTART_DELAY_MAX)

    def _retire(self, child: _Child, what: str) -> None:
        """Take a child that has gone out of the pool for good: fail its request, reap it, and
        start its replacement. Called once or many times per child, always on the loop."""
        if not child.alive:
            return
        child.alive = False
        slot = self._slots[child.index]
        if slot.child is child:
            slot.child = None
        if child.job is not None:
            child.job.messages.put_nowait((_LOST, BackendUnavailable(
                f"The worker process of model {self.name} exited while it served this request; "
                "it is being restarted. Retry the request.",
                retry_after_ms=1000,
            )))
            child.job.finished = True
            child.job = None
        if not self._closed:
            log.error("model worker %s-%d %s; restarting it", self.name, child.index, what)
            slot.task = asyncio.get_running_loop().create_task(self._replace(child))

    async def _replace(self, child: _Child) -> None:
        await asyncio.to_thread(_reap, child.process, child)
        await self._keep_loading(child.index, True)

    # -- messages from the children ----------------------------------------------------------

    def _read(self, child: _Child) -> None:
        """Runs in a thread per child: hands each message to the event loop."""
        assert self._loop is not None
        while True:
            try:
                message = child.conn.recv()
            except (EOFError, OSError):
                if not self._closed:
                    self._loop.call_soon_threadsafe(self._retire, child, "exited")
                return
            self._loop.call_soon_threadsafe(self._dispatch, child, message)

    def _dispatch(self, child: _Child, message: tuple[str, Any, Any]) -> None:
        kind, job_id, data = message
        job = child.job
        if job is None or job.id != job_id:
            return
        job.messages.put_nowait((kind, data))
        if kind in (_RESULT, _END, _ERROR):
            job.finished = True
            child.job = None
            if child.alive:
                self._idle.put_nowait(child)

    # -- handing out requests ----------------------------------------------------------------

    def _unavailable(self) -> BackendUnavailable:
        if self._closed:
            return BackendUnavailable(f"model {self.name} is shutting down")
        failures = [slot.failure for slot in self._slots if slot.failure is not None]
        waits = [slot.retry_at - time.monotonic() for slot in self._slots if slot.failure]
        retry_ms = max(1000, round(1000 * min(waits, default=1.0)))
        seconds = -(-retry_ms // 1000)
        if failures:
            return BackendUnavailable(
                f"Model {self.name} has no running worker: {failures[0]}. It is tried again "
                f"automatically; retry after {seconds} s, and if this persists see the server "
                "log.",
                retry_after_ms=retry_ms,
            )
        return BackendUnavailable(
            f"Model {self.name} has no running worker yet (one is loading after a restart, for "
            f"longer than {self._wait_seconds:g} s). Retry after {seconds} s.",
            retry_after_ms=retry_ms,
        )

    async def _acquire(self) -> _Child:
        self._drop_dead()
        if self._closed or (self._idle.empty() and self._failing()):
            raise self._unavailable()
        if self._idle.empty() and self._waiting >= self._queue_size:
            raise TooManyRequests(
                f"The model behind this deployment is busy ({self._waiting} requests waiting). "
                "Retry after a short wait.",
                retry_after_ms=1000,
                reason="model_busy",
            )
        self._waiting += 1
        try:
            deadline = time.monotonic() + self._wait_seconds
            while True:
                child = await self._next_idle(deadline - time.monotonic())
                if child is None:  # woken by a change, or wait_seconds passed
                    if self._closed or self._failing():
                        raise self._unavailable()  # waiting would not help
                    if time.monotonic() < deadline:
                        continue  # another worker may still load in time
                    if not any(slot.child for slot in self._slots):
                        raise self._unavailable()
                    deadline = time.monotonic() + self._wait_seconds
                    continue  # its workers run, busy: wait on in the bounded queue
                # A child killed while idle may still be queued if its reader thread has not
                # told the loop yet; is_alive() asks the kernel (and reaps it).
                if child.alive and child.process.is_alive():
                    return child
                self._retire(child, "died while idle")
        finally:
            self._waiting -= 1

    def _drop_dead(self) -> None:
        """Take children the pool already knows are dead out of the idle queue, so that a
        killed idle child does not hide that no worker runs."""
        for _ in range(self._idle.qsize()):
            child = self._idle.get_nowait()
            if child.alive:
                self._idle.put_nowait(child)

    def _changed(self) -> None:
        """Wake every waiting caller: a load failed or the pool closed, so that waiting may no
        longer help (each looks again at the pool and goes on waiting or gets 503)."""
        self._wake.set()
        self._wake = asyncio.Event()

    async def _next_idle(self, timeout: float) -> _Child | None:
        """The next idle child, or None after ``timeout`` or once the pool changed."""
        if not self._idle.empty():  # the common case, without a task
            return self._idle.get_nowait()
        if self._closed or self._failing() or timeout <= 0:
            return None
        getter = asyncio.ensure_future(self._idle.get())
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((getter, woken), timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # the caller went away, perhaps with a child just handed over
            if getter.done():
                self._idle.put_nowait(getter.result())
            raise
        finally:
            woken.cancel()
            if not getter.done():
                getter.cancel()  # Queue.get passes a wake-up it had on to the next getter
        if getter.done():
            return getter.result()
        return None

    async def _first(self, kind: str, method: str, payload: Any) -> tuple[_Child, _Job, str, Any]:
        """Hand a request to a running child and wait for its first answer. A child can die
        after the liveness check yet before it reads the request (killed while idle, the
        kernel not done tearing it down); a request its child died without answering goes to
        another child, once. That is safe: runners compute and keep nothing, and nothing of
        the first attempt reached the caller. Twice is a pattern (a request that kills its
        worker?), answered with 503."""
        for attempt in range(2):
            child = await self._acquire()
            job = _Job(next(self._ids))
            child.job = job
            try:
                child.conn.send((kind, job.id, method, payload))
            except OSError:  # BrokenPipeError, ConnectionResetError: the child is gone
                self._retire(child, "died before it got a request")
                answer: tuple[str, Any] = await job.messages.get()
            except BaseException:  # the payload would not pickle: the child is fine
                child.job = None
                self._idle.put_nowait(child)
                raise
            else:
                try:
                    answer = await job.messages.get()
                except BaseException:  # the caller went away first
                    self._cancel(child, job)
                    raise
            if answer[0] != _LOST or attempt:
                return child, job, *answer
            log.warning("model %s: a request its worker died without answering goes to another",
                        self.name)
        raise AssertionError("unreachable")

    @staticmethod
    def _raise(data: Any) -> None:
        if isinstance(data, ServiceError):
            raise data
        raise BackendUnavailable(f"model error: {data}")

    @staticmethod
    def _cancel(child: _Child, job: _Job) -> None:
        """Stop a job its caller no longer waits for (a client that disconnected)."""
        if not job.finished and child.alive:
            with contextlib.suppress(OSError):  # it died meanwhile; its reader reports that
                child.conn.send((_CANCEL, job.id, None, None))

    async def call(self, method: str, payload: Any) -> Any:
        _, _, kind, data = await self._first(_CALL, method, payload)
        if kind != _RESULT:
            self._raise(data)
        return data

    async def stream(self, method: str, payload: Any) -> AsyncIterator[Any]:
        child, job, kind, data = await self._first(_STREAM, method, payload)
        try:
            while kind == _ITEM:
                yield data
                kind, data = await job.messages.get()
            if kind != _END:
                self._raise(data)
        finally:
            self._cancel(child, job)

    async def close(self) -> None:
        self._closed = True
        self._changed()
        tasks = [slot.task for slot in self._slots if slot.task is not None]
        for slot in self._slots:
            if slot.task is not None:
                slot.task.cancel()
            if slot.loading is not None:
                slot.loading.kill()  # its loading thread then sees the pipe close
        await asyncio.gather(*tasks, return_exceptions=True)
        # Killed, not asked: a runner holds nothing to save, and a child busy generating would
        # only read a polite request at its next token. Its pipe closes after its reader thread
        # has seen the end, never under it.
        children = [slot.child for slot in self._slots if slot.child is not None]
        await asyncio.gather(*(asyncio.to_thread(_reap, c.process, c) for c in children))


def _reap(process: Any, child: _Child | None = None) -> None:
    """Kill a worker process and wait for it, so that no zombie is left; then close its pipe,
    once its reader thread (which sees the pipe close when the process dies) has finished."""
    process.kill()
    process.join(REAP_SECONDS)
    if process.exitcode is None:
        log.error("model worker process %s did not exit after SIGKILL", process.pid)
    if child is not None:
        if child.reader is not None:
            child.reader.join(REAP_SECONDS)
        child.conn.close()
