"""Small formatting helpers shared by the command's modules."""

from __future__ import annotations

from datetime import datetime


def when(value: float | None) -> str:
    """A timestamp as local time, or nothing."""
    return datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M:%S") if value else ""
