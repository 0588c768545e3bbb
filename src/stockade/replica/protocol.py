"""Frames between the hub and its HTTP workers: a 4-byte length, then a pickled tuple of plain
values (no dataclasses: pickling those cost more than the limiter's arithmetic).

Pickle is safe here because both ends are processes of the same replica, and the socket lives in
a directory only the replica's user can enter. Frames are written in batches, one write per turn
of the event loop: a write wakes the other process, and on small virtual machines that costs
more than everything else in a round trip.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from typing import Any

_LENGTH = struct.Struct("!I")

# Requests: (id, op, args). Replies: (id, kind, data).
RESERVE, SETTLE, POOL_START, POOL_CALL, POOL_STREAM, POOL_STATE, CANCEL = (
    "reserve", "settle", "pool.start", "pool.call", "pool.stream", "pool.state", "cancel"
)
RESULT, ITEM, END, ERROR = "result", "item", "end", "error"


def encode(message: tuple[Any, ...]) -> bytes:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(payload)) + payload


async def read(reader: asyncio.StreamReader) -> tuple[Any, ...]:
    """The next frame; raises ``asyncio.IncompleteReadError`` when the peer has gone."""
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    message: tuple[Any, ...] = pickle.loads(await reader.readexactly(length))
    return message


class FrameWriter:
    """Queues frames and writes all those of one event-loop turn at once."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self._pending: list[bytes] = []

    def send(self, message: tuple[Any, ...]) -> None:
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append(encode(message))

    def _flush(self) -> None:
        if self._pending and not self.writer.is_closing():
            self.writer.write(b"".join(self._pending))
        self._pending.clear()

    async def drain(self) -> None:
        self._flush()
        await self.writer.drain()

    def close(self) -> None:
        self._flush()
        self.writer.close()
