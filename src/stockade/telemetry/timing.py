"""Time to first token and time per output token, measured on a model's stream of events (which
streamed calls and whole replies alike come from) and observed into the metrics."""

from __future__ import annotations

import time

from stockade.backends.base import Delta, Events
from stockade.telemetry import metrics
from stockade.telemetry.usage import Call


async def timed(events: Events, call: Call) -> Events:
    """``events``, timing them for ``call``'s deployment: from the call's arrival to the first
    text or tool call, then per output token to the end (the count is the model's final one, as
    the call record has it once the stream ends). A stream closed early has no per-token time."""
    first: float | None = None
    ended = False
    try:
        async for item in events:
            if first is None and isinstance(item, Delta) and (item.text or item.tool_calls):
                first = time.perf_counter()
            yield item
        ended = True
    finally:
        await events.aclose()  # type: ignore[attr-defined]
        if first is not None:
            _observe(call, first, ended)


def _observe(call: Call, first: float, ended: bool) -> None:
    to_first, per_token = metrics.token_times(call.deployment or metrics.OTHER, call.model or metrics.OTHER)
    to_first.observe(first - call.started)
    if ended and call.completion_tokens > 1:
        per_token.observe((time.perf_counter() - first) / (call.completion_tokens - 1))
