"""Model inference in child processes, so the event loop never waits on a model.

Each child loads one *runner* (an object whose methods do the work) and serves one request at a
time over a pipe. Plain methods return one result; generator methods stream items and stop early
when the parent sends a cancel message, which is how a client that disconnects stops generation.
Requests queue for a free child up to a bound; past it callers get 429 at once.
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import logging
import multiprocessing
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from stockade.backends.base import PoolSpec
from stockade.errors import BackendUnavailable, ServiceError, TooManyRequests
from stockade.tracebacks import without_messages

log = logging.getLogger(__name__)

_CALL, _STREAM, _CANCEL = "call", "stream", "cancel"
_READY, _RESULT, _ITEM, _END, _ERROR = "ready", "result", "item", "end", "error"


def _load_runner(path: str, options: dict[str, Any]) -> Any:
    module_name, _, class_name = path.partition(":")
    return getattr(importlib.import_module(module_name), class_name)(**options)


def _child_main(conn: Connection, runner_path: str, options: dict[str, Any]) -> None:
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
    job: _Job | None = None


@dataclass(eq=False)
class _Job:
    id: int
    messages: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)
    finished: bool = False


class ModelWorkers:
    """A pool of child processes running one model runner."""

    def __init__(self, spec: PoolSpec) -> None:
        self.name = spec.name
        self._runner = spec.runner
        self._options = spec.options
        self._processes = spec.processes
        self._queue_size = spec.queue_size
        self._context = multiprocessing.get_context("spawn")
        self._ids = itertools.count(1)
        self._idle: asyncio.Queue[_Child] = asyncio.Queue()
        self._children: list[_Child] = []
        self._waiting = 0
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        children = await asyncio.gather(*(self._spawn(i) for i in range(self._processes)))
        self._children = list(children)
        for child in children:
            self._idle.put_nowait(child)

    async def _spawn(self, index: int) -> _Child:
        parent_conn, child_conn = self._context.Pipe()
        process = self._context.Process(
            target=_child_main,
            args=(child_conn, self._runner, self._options),
            name=f"stockade-{self.name}-{index}",
            daemon=True,
        )
        process.start()
        child_conn.close()
        try:
            kind, _, detail = await asyncio.to_thread(parent_conn.recv)
        except EOFError:
            kind, detail = _ERROR, f"exit code {process.exitcode}"
        if kind != _READY:
            process.kill()
            raise BackendUnavailable(f"model {self.name} failed to load: {detail}")
        child = _Child(index, parent_conn, process)
        threading.Thread(
            target=self._read, args=(child,), name=f"{self.name}-reader-{index}", daemon=True
        ).start()
        return child

    def _read(self, child: _Child) -> None:
        """Runs in a thread per child: hands each message to the event loop."""
        assert self._loop is not None
        while True:
            try:
                message = child.conn.recv()
            except (EOFError, OSError):
                if not self._closed:
                    self._loop.call_soon_threadsafe(self._on_child_exit, child)
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
            self._idle.put_nowait(child)

    def _on_child_exit(self, child: _Child) -> None:
        log.error("model worker %s-%d exited; restarting it", self.name, child.index)
        if child.job is not None:
            child.job.messages.put_nowait((_ERROR, f"model worker {self.name} exited"))
            child.job.finished = True
            child.job = None
        asyncio.get_running_loop().create_task(self._respawn(child.index))

    async def _respawn(self, index: int) -> None:
        if self._closed:
            return
        replacement = await self._spawn(index)
        self._children[index] = replacement
        self._idle.put_nowait(replacement)

    async def _acquire(self) -> _Child:
        if self._closed:
            raise BackendUnavailable(f"model {self.name} is shutting down")
        if self._idle.empty() and self._waiting >= self._queue_size:
            raise TooManyRequests(
                f"The model behind this deployment is busy ({self._waiting} requests waiting). "
                "Retry after a short wait.",
                retry_after_ms=1000,
            )
        self._waiting += 1
        try:
            return await self._idle.get()
        finally:
            self._waiting -= 1

    def _submit(self, child: _Child, kind: str, method: str, payload: Any) -> _Job:
        job = _Job(next(self._ids))
        child.job = job
        child.conn.send((kind, job.id, method, payload))
        return job

    @staticmethod
    def _raise(data: Any) -> None:
        if isinstance(data, ServiceError):
            raise data
        raise BackendUnavailable(f"model error: {data}")

    async def call(self, method: str, payload: Any) -> Any:
        child = await self._acquire()
        job = self._submit(child, _CALL, method, payload)
        kind, data = await job.messages.get()
        if kind == _ERROR:
            self._raise(data)
        return data

    async def stream(self, method: str, payload: Any) -> AsyncIterator[Any]:
        child = await self._acquire()
        job = self._submit(child, _STREAM, method, payload)
        try:
            while True:
                kind, data = await job.messages.get()
                if kind == _ITEM:
                    yield data
                elif kind == _END:
                    return
                else:
                    self._raise(data)
        finally:
            if not job.finished:
                # The consumer went away (client disconnected): stop generating now.
                child.conn.send((_CANCEL, job.id, None, None))

    async def close(self) -> None:
        self._closed = True
        for child in self._children:
            child.conn.close()
            child.process.join(timeout=2)
            if child.process.is_alive():
                child.process.kill()
