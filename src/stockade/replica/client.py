"""An HTTP worker's side of the hub: the shared limiter, and the replica's model worker pools."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from stockade.backends.base import PoolSpec, WorkerPool
from stockade.config import Settings
from stockade.errors import BackendUnavailable
from stockade.quotas import Bucket, Reservation
from stockade.replica import protocol


class HubClient:
    """One connection to the hub, shared by every request of this process; replies are matched
    to requests by id, so calls and streams interleave freely."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any] | asyncio.Queue[tuple[str, Any]]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._connecting = asyncio.Lock()

    async def _connected(self) -> asyncio.StreamWriter:
        if self._writer is not None:
            return self._writer
        async with self._connecting:
            if self._writer is None:
                try:
                    reader, writer = await asyncio.open_unix_connection(str(self.path))
                except OSError as exc:
                    raise self._gone(exc) from None
                asyncio.get_running_loop().create_task(self._read(reader))
                self._writer = writer
        return self._writer

    @staticmethod
    def _gone(cause: object) -> BackendUnavailable:
        return BackendUnavailable(
            f"this worker lost its replica's hub ({cause}); the replica is shutting down or its "
            "main process died: restart `stockade serve`"
        )

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                request_id, kind, data = await protocol.read(reader)
                waiter = self._waiting.get(request_id)
                if isinstance(waiter, asyncio.Queue):
                    waiter.put_nowait((kind, data))
                elif waiter is not None and not waiter.done():
                    del self._waiting[request_id]
                    if kind == protocol.ERROR:
                        waiter.set_exception(data)
                    else:
                        waiter.set_result(data)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self._writer = None
            for waiter in self._waiting.values():
                error = self._gone(type(exc).__name__)
                if isinstance(waiter, asyncio.Queue):
                    waiter.put_nowait((protocol.ERROR, error))
                elif not waiter.done():
                    waiter.set_exception(error)
            self._waiting.clear()

    async def request(self, op: str, args: Any) -> Any:
        writer = await self._connected()
        request_id = next(self._ids)
        reply = self._waiting[request_id] = asyncio.get_running_loop().create_future()
        writer.write(protocol.encode((request_id, op, args)))
        return await reply

    async def notify(self, op: str, args: Any) -> None:
        """A request that needs no answer."""
        writer = await self._connected()
        writer.write(protocol.encode((0, op, args)))

    async def stream(self, op: str, args: Any) -> AsyncIterator[Any]:
        writer = await self._connected()
        request_id = next(self._ids)
        items: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._waiting[request_id] = items
        writer.write(protocol.encode((request_id, op, args)))
        finished = False
        try:
            while True:
                kind, data = await items.get()
                if kind == protocol.ITEM:
                    yield data
                    continue
                finished = True
                if kind == protocol.ERROR:
                    raise data
                return
        finally:
            self._waiting.pop(request_id, None)
            if not finished and self._writer is not None:
                # The consumer went away (the client disconnected): stop the model now.
                self._writer.write(protocol.encode((0, protocol.CANCEL, request_id)))

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class HubLimiter:
    """The replica's one set of rate-limit counters, kept by the hub."""

    def __init__(self, client: HubClient, window_seconds: int) -> None:
        self.client = client
        self.window_seconds = window_seconds

    async def reserve(self, buckets: Sequence[Bucket], cost: int, operation: str) -> Reservation:
        reservation: Reservation = await self.client.request(
            protocol.RESERVE, (buckets, cost, operation)
        )
        return reservation

    async def settle(self, reservation: Reservation, actual_tokens: int) -> None:
        if reservation.settled:
            return
        # Sent before it is marked settled here, so that the hub's copy is not.
        await self.client.notify(protocol.SETTLE, (reservation, actual_tokens))
        reservation.settled = True

    async def close(self) -> None:
        """The connection belongs to the host, which closes it."""


class RemotePool:
    """A model's worker pool as the hub runs it for every HTTP worker of the replica."""

    def __init__(self, client: HubClient, spec: PoolSpec) -> None:
        self.client = client
        self.spec = spec

    async def start(self) -> None:
        await self.client.request(protocol.POOL_START, self.spec)

    async def call(self, method: str, payload: Any) -> Any:
        return await self.client.request(protocol.POOL_CALL, (self.spec.name, method, payload))

    def stream(self, method: str, payload: Any) -> AsyncIterator[Any]:
        return self.client.stream(protocol.POOL_STREAM, (self.spec.name, method, payload))

    async def close(self) -> None:
        """The pool is the replica's; it stops when the replica does."""


class HubHost:
    """The ModelHost of an HTTP worker: models run in the replica's pools, not in this process."""

    def __init__(self, settings: Settings, client: HubClient) -> None:
        self.settings = settings
        self.client = client

    def worker_pool(self, spec: PoolSpec) -> WorkerPool:
        return RemotePool(self.client, spec)

    async def close(self) -> None:
        await self.client.close()
