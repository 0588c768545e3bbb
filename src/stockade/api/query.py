"""Query parameters that several routes read."""

from __future__ import annotations

from stockade.errors import InvalidRequest


def page_limit(value: str | None, largest: int, default: int) -> int:
    """A list's ``limit``: a whole number from 1 to ``largest``, ``default`` when absent."""
    if value is None:
        return default
    if not value.isdigit() or not 1 <= int(value) <= largest:
        raise InvalidRequest(
            f"limit must be a whole number from 1 to {largest}.", code="invalid_value", param="limit"
        )
    return int(value)


def page_order(value: str | None) -> str:
    """A list's ``order``: ``asc``, or ``desc`` (newest first), the default."""
    if value is None:
        return "desc"
    if value not in ("asc", "desc"):
        raise InvalidRequest("order must be 'asc' or 'desc'.", code="invalid_value", param="order")
    return value
