"""Prometheus metrics, served at ``/metrics`` to holders of a key that may read the resource.

Each server process exposes its own; Prometheus adds them up across replicas.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, generate_latest

RATE_LIMIT_DECISIONS = Counter(
    "stockade_rate_limit_decisions",
    "Admission decisions of the rate limiter, by deployment and outcome",
    ["deployment", "decision"],  # admitted, throttled
)
LIMITER_REDIS_UP = Gauge(
    "stockade_rate_limiter_redis_up",
    "1 while limits are shared through Redis; 0 while this replica falls back to its share "
    "of each limit because Redis is unreachable",
)
LIMITER_REDIS_ERRORS = Counter(
    "stockade_rate_limiter_redis_errors", "Calls to Redis by the rate limiter that failed"
)
TOKENS = Counter(
    "stockade_tokens", "Tokens processed, by deployment and kind", ["deployment", "kind"]
)


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus's text format, and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
