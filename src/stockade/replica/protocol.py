"""Frames between the hub and its HTTP workers: a 4-byte length, then a pickled tuple.

Pickle is safe here because both ends are processes of the same replica, and the socket lives in
a directory only the replica's user can enter.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from typing import Any

_LENGTH = struct.Struct("!I")

# Requests: (id, op, args). Replies: (id, kind, data).
RESERVE, SETTLE, POOL_START, POOL_CALL, POOL_STREAM, CANCEL = (
    "reserve", "settle", "pool.start", "pool.call", "pool.stream", "cancel"
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
