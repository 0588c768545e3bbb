"""Things that start once however many callers ask at the same time: models, worker pools."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, Protocol, TypeVar


class Closable(Protocol):
    async def close(self) -> None: ...


K = TypeVar("K", bound=Hashable)
V = TypeVar("V", bound=Closable)


class StartedOnce(Generic[K, V]):
    """Concurrent first callers of a key share one start-up; a start-up that failed is tried
    again by the next caller."""

    def __init__(self) -> None:
        self._tasks: dict[K, asyncio.Task[V]] = {}

    async def get(self, key: K, start: Callable[[], Awaitable[V]]) -> V:
        task = self._tasks.get(key)
        if task is not None and _succeeded(task):
            return task.result()  # the request path's case: no future to shield
        if task is None or task.done():
            task = self._tasks[key] = asyncio.ensure_future(start())
        return await asyncio.shield(task)

    async def started(self, key: K) -> V | None:
        """The running value of a key, waiting for its start-up; None if it was never asked for."""
        task = self._tasks.get(key)
        return None if task is None else await asyncio.shield(task)

    def status(self, key: K) -> tuple[str, V | None]:
        """Without waiting: "absent" (never asked for), "starting", "failed" (the next caller
        tries again) or "running", with the running value."""
        task = self._tasks.get(key)
        if task is None:
            return "absent", None
        if not task.done():
            return "starting", None
        return ("running", task.result()) if _succeeded(task) else ("failed", None)

    async def discard(self, key: K) -> None:
        """Stop a key's value, or its start-up; the next caller starts it afresh."""
        task = self._tasks.pop(key, None)
        if task is not None:
            await _stop(task)

    async def close(self) -> None:
        for task in self._tasks.values():
            await _stop(task)
        self._tasks.clear()


async def _stop(task: asyncio.Task[V]) -> None:
    if _succeeded(task):
        await task.result().close()
    else:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


def _succeeded(task: asyncio.Task[V]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None
