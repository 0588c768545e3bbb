"""Prometheus metrics, served at ``/metrics`` to holders of a key that may read the resource.

Each server process exposes its own; Prometheus adds them up across replicas.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Enum, generate_latest

RATE_LIMIT_DECISIONS = Counter(
    "stockade_rate_limit_decisions",
    "Admission decisions of the rate limiter, by deployment and outcome",
    ["deployment", "decision"],  # admitted, throttled
)
LIMITER_STATE = Enum(
    "stockade_rate_limiter",
    "Where rate-limit counters live: local (no redis_url), redis (shared by replicas), or "
    "fallback (Redis unreachable: this replica enforces its share of each limit)",
    states=["local", "redis", "fallback"],
)
LIMITER_REDIS_ERRORS = Counter(
    "stockade_rate_limiter_redis_errors", "Calls to Redis by the rate limiter that failed"
)
def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus's text format, and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
