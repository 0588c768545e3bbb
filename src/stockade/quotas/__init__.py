"""Quotas and rate limits with Azure OpenAI's semantics, in one process or shared through Redis."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stockade.quotas.estimate import approximate_prompt_tokens, reserved_tokens
from stockade.quotas.limiter import Limiter, LocalLimiter, Reservation
from stockade.quotas.limits import Bucket, Limit, Remaining
from stockade.telemetry import metrics

if TYPE_CHECKING:
    from stockade.config import Settings

__all__ = [
    "Bucket",
    "Limit",
    "Limiter",
    "LocalLimiter",
    "Remaining",
    "Reservation",
    "approximate_prompt_tokens",
    "create_limiter",
    "reserved_tokens",
]


def create_limiter(settings: Settings) -> Limiter:
    """Redis when ``redis_url`` is set, so replicas share limits; otherwise in-process."""
    limits = settings.limits
    if settings.redis_url:
        from stockade.quotas.redis import RedisLimiter

        return RedisLimiter(settings.redis_url, limits.window_seconds, limits.replicas)
    metrics.LIMITER_STATE.state("local")
    return LocalLimiter(limits.window_seconds)
