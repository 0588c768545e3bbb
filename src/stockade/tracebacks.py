"""Tracebacks for the server's log that quote no request data.

An exception's message may quote what a caller sent (``invalid literal for int(): '<key>'``), and
request text must not reach the log. These tracebacks keep the frames and each exception's type,
enough to find the fault, and leave the messages out.
"""

from __future__ import annotations

import traceback


def without_messages(exc: BaseException) -> str:
    """``exc``'s traceback and those of its causes and contexts, oldest first, messages left out."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    parts = []
    for error in reversed(chain):
        kind = type(error)
        parts.append(
            "Traceback (most recent call last):\n"
            + "".join(traceback.format_tb(error.__traceback__))
            + f"{kind.__module__}.{kind.__qualname__} (message not logged: it may quote the request)\n"
        )
    return "\nwhich led to:\n\n".join(parts)
