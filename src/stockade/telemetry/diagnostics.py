"""The diagnostic log: one JSON line per request, in the shape of Azure's RequestResponse
diagnostic category (time, category, operationName, durationMs, resultSignature, callerIpAddress,
correlationId, properties). Metadata only: never a body, a header's value or a query string,
which can carry secrets.

Lines are kept in memory and written in one batch every ``flush_seconds`` by a background task,
because logging each line as it happens (as uvicorn's access log does: a log record, a formatter
and a write per request) was one of the largest costs on the request path (docs/performance.md).
A request only appends a tuple; the JSON is built when the batch is written.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import orjson

if TYPE_CHECKING:
    from stockade.config import TelemetrySettings

MAX_PENDING = 100_000  # lines kept while the stream blocks; the oldest are dropped past this

Client = tuple[str, int] | None  # the ASGI scope's peer


@dataclass(slots=True)
class Entry:
    """What one request leaves in the log."""

    ts: float
    client: Client
    method: str
    path: str
    operation: str  # the inference operation, or "unknown"
    status: int
    duration_ms: float
    request_id: str  # sent back as both x-request-id and apim-request-id
    deployment: str | None
    model: str | None
    principal: str | None  # the key's or identity's name
    principal_id: str | None
    prompt_tokens: int
    completion_tokens: int
    streamed: bool


def line(entry: Entry) -> bytes:
    whole, fraction = divmod(entry.ts, 1)
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int(fraction * 1000):03d}Z"
    operation = entry.operation if entry.operation != "unknown" else entry.method
    return orjson.dumps({
        "time": when,
        "category": "RequestResponse",
        "operationName": operation,
        "durationMs": round(entry.duration_ms),
        "resultSignature": str(entry.status),
        "callerIpAddress": "-" if entry.client is None else f"{entry.client[0]}:{entry.client[1]}",
        "correlationId": entry.request_id,
        "properties": {
            "method": entry.method,
            "path": entry.path,
            "deployment": entry.deployment,
            "model": entry.model,
            "principal": entry.principal,
            "principalId": entry.principal_id,
            "promptTokens": entry.prompt_tokens,
            "completionTokens": entry.completion_tokens,
            "streamType": "Streaming" if entry.streamed else "NonStreaming",
            "requestId": entry.request_id,
            "apimRequestId": entry.request_id,
        },
    }) + b"\n"


class DiagnosticLog:
    def __init__(self, stream: TextIO | Path | None = None, flush_seconds: float = 0.25) -> None:
        """``stream``: where lines go; a path is opened for appending when the log starts, and
        None is standard output, looked up when writing (tests and ``stockade serve`` replace it)."""
        self._path = stream if isinstance(stream, Path) else None
        self._stream = None if isinstance(stream, Path) else stream
        self._flush_seconds = flush_seconds
        self._pending: list[Entry] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, entry: Entry) -> None:
        self._pending.append(entry)
        if len(self._pending) > MAX_PENDING:
            del self._pending[: len(self._pending) - MAX_PENDING]

    def start(self) -> None:
        if self._path is not None:
            self._stream = self._path.open("a", encoding="utf-8")
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        stream = self._stream or sys.stdout
        stream.write(b"".join(line(entry) for entry in batch).decode())
        stream.flush()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.flush()
        if self._path is not None and self._stream is not None:
            self._stream.close()
            self._stream = None


def configured_log(settings: TelemetrySettings) -> DiagnosticLog | None:
    """The log ``telemetry.diagnostic_log`` asks for: on standard output, in a file, or none."""
    where = settings.diagnostic_log
    if where == "off":
        return None
    target = None if where == "stdout" else Path(where)
    return DiagnosticLog(target, settings.diagnostic_flush_seconds)
