"""An HTTP worker's side of the hub: the shared limiter, and the replica's model worker pools."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from stockade.backends.base import PoolSpec, PoolState, WorkerPool
from stockade.config import Settings
from stockade.errors import BackendUnavailable
from stockade.quotas import Bucket, Remaining, Reservation
from stockade.quotas.limiter import too_many_requests
from stockade.quotas.limits import Refusal
from stockade.replica import protocol
from stockade.replica.hub import REFUSED


class HubClient:
    """One connection to the hub, shared by every request of this process; replies are matched
    to requests by id, so calls and streams interleave freely."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any] | asyncio.Queue[tuple[str, Any]]] = {}
        self._frames: protocol.FrameWriter | None = None
        self._connecting = asyncio.Lock()

    async def _connected(self) -> protocol.FrameWriter:
        if self._frames is not None:
            return self._frames
        async with self._connecting:
            if self._frames is None:
                try:
                    reader, writer = await asyncio.open_unix_connection(str(self.path))
                except OSError as exc:
                    raise self._gone(exc) from None
                asyncio.get_running_loop().create_task(self._read(reader))
                self._frames = protocol.FrameWriter(writer)
        return self._frames

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
            self._frames = None
            for waiter in self._waiting.values():
                error = self._gone(type(exc).__name__)
                if isinstance(waiter, asyncio.Queue):
                    waiter.put_nowait((protocol.ERROR, error))
                elif not waiter.done():
                    waiter.set_exception(error)
            self._waiting.clear()

    async def request(self, op: str, args: Any) -> Any:
        frames = await self._connected()
        request_id = next(self._ids)
        reply = self._waiting[request_id] = asyncio.get_running_loop().create_future()
        frames.send((request_id, op, args))
        return await reply

    async def notify(self, op: str, args: Any) -> None:
        """A request that needs no answer."""
        (await self._connected()).send((0, op, args))

    async def stream(self, op: str, args: Any) -> AsyncIterator[Any]:
        frames = await self._connected()
        request_id = next(self._ids)
        items: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._waiting[request_id] = items
        frames.send((request_id, op, args))
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
            if not finished and self._frames is not None:
                # The consumer went away (the client disconnected): stop the model now.
                self._frames.send((0, protocol.CANCEL, request_id))

    async def close(self) -> None:
        if self._frames is not None:
            self._frames.close()
            self._frames = None


class HubLimiter:
    """The replica's one set of rate-limit counters, kept by the hub."""

    def __init__(self, client: HubClient, window_seconds: int) -> None:
        self.client = client
        self.window_seconds = window_seconds

    async def reserve(self, buckets: Sequence[Bucket], cost: int, operation: str) -> Reservation:
        limits = tuple(
            (bucket.scope, bucket.limit.tokens_per_minute, bucket.limit.requests_per_minute)
            for bucket in buckets
        )
        outcome, *values = await self.client.request(protocol.RESERVE, (cost, limits))
        if outcome == REFUSED:
            wait_ms, kind, index = values
            raise too_many_requests(Refusal(wait_ms, kind, buckets[index]), operation)
        minute, window, tokens, requests = values
        return Reservation(buckets, cost, minute, window, Remaining(tokens, requests))

    async def settle(self, reservation: Reservation, actual_tokens: int) -> None:
        if reservation.settled:
            return
        reservation.settled = True
        scopes = tuple(bucket.scope for bucket in reservation.buckets)
        delta = actual_tokens - reservation.cost
        await self.client.notify(
            protocol.SETTLE, (scopes, reservation.minute, reservation.window, delta)
        )

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

    async def state(self) -> PoolState:
        """The hub's pool's state, the same whichever HTTP worker asks."""
        state: PoolState = await self.client.request(protocol.POOL_STATE, self.spec.name)
        return state

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
