"""The access log: one line per request (address, method, path, status, time, request id),
never a body or a query string, which can carry secrets.

Lines are kept in memory and written in one batch every ``flush_seconds`` by a background task,
because logging each line as it happens (as uvicorn's access log does: a log record, a formatter
and a write per request) was one of the largest costs on the request path (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TextIO

MAX_PENDING = 100_000  # lines kept while the stream blocks; the oldest are dropped past this

Client = tuple[str, int] | None  # the ASGI scope's peer


def _address(client: Client) -> str:
    return "-" if client is None else f"{client[0]}:{client[1]}"


class AccessLog:
    def __init__(self, stream: TextIO | None = None, flush_seconds: float = 0.25) -> None:
        self._stream = stream
        self._flush_seconds = flush_seconds
        self._pending: list[tuple[float, Client, str, str, int, float, str]] = []
        self._task: asyncio.Task[None] | None = None

    def add(
        self, client: Client, method: str, path: str, status: int, latency_ms: float, request_id: str
    ) -> None:
        self._pending.append((time.time(), client, method, path, status, latency_ms, request_id))
        if len(self._pending) > MAX_PENDING:
            del self._pending[: len(self._pending) - MAX_PENDING]

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        stream = self._stream or sys.stderr
        stream.write("".join(
            f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(ts))}Z {_address(client)} "
            f'"{method} {path}" {status} {latency:.1f}ms {request_id}\n'
            for ts, client, method, path, status, latency, request_id in batch
        ))
        stream.flush()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.flush()
