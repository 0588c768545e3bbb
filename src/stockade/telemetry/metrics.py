"""Prometheus metrics, served at ``/metrics`` to holders of a key that may read the resource.

Each replica exposes its own (all its HTTP workers' together); Prometheus adds them up across
replicas.
"""

from __future__ import annotations

import functools
import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
    multiprocess,
)

RATE_LIMIT_DECISIONS = Counter(
    "stockade_rate_limit_decisions",
    "Admission decisions of the rate limiter, by deployment and outcome",
    ["deployment", "decision"],  # admitted, throttled
)


@functools.lru_cache(maxsize=4096)
def rate_limit_decision(deployment: str, decision: str) -> Counter:
    """The counter child of one deployment and outcome, looked up once: ``labels()`` takes a
    lock and builds a key on every call, on the request path."""
    return RATE_LIMIT_DECISIONS.labels(deployment, decision)


CONTENT_FILTER_DECISIONS = Counter(
    "stockade_content_filter_decisions",
    "Content filter decisions, by deployment, policy, direction (prompt, completion), category "
    "(hate, sexual, violence, self_harm, profanity, custom_blocklists, error) and action (block, "
    "annotate, error: a filter failed and the policy fails open)",
    ["deployment", "policy", "direction", "category", "action"],
)


@functools.lru_cache(maxsize=4096)
def content_filter_decision(
    deployment: str, policy: str, direction: str, category: str, action: str
) -> Counter:
    return CONTENT_FILTER_DECISIONS.labels(deployment, policy, direction, category, action)


AUTHENTICATION_FAILURES = Counter(
    "stockade_authentication_failures",
    "Wrong secrets presented (keys, tokens, client secrets, identity headers), by outcome: "
    "unauthorized (401), or refused (429: the source is over auth.failed_attempts_per_minute)",
    ["outcome"],
)


class _LimiterState:
    """Where rate-limit counters live, as a Prometheus state set: local (no redis_url), redis
    (shared by replicas), or fallback (Redis unreachable: this replica enforces its share of each
    limit). A gauge per state rather than an Enum, because Enums are not shared between the
    processes of a replica; across processes the highest value wins, so a state any process is
    in shows as 1."""

    STATES = ("local", "redis", "fallback")

    def __init__(self) -> None:
        self._gauge = Gauge(
            "stockade_rate_limiter",
            "Where rate-limit counters live: local (no redis_url), redis (shared by replicas), "
            "or fallback (Redis unreachable: this replica enforces its share of each limit)",
            ["stockade_rate_limiter"],
            multiprocess_mode="max",
        )

    def state(self, current: str) -> None:
        for name in self.STATES:
            self._gauge.labels(name).set(1 if name == current else 0)


LIMITER_STATE = _LimiterState()
LIMITER_REDIS_ERRORS = Counter(
    "stockade_rate_limiter_redis_errors", "Calls to Redis by the rate limiter that failed"
)


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus's text format, and its content type. With several HTTP workers
    (``PROMETHEUS_MULTIPROC_DIR`` set by ``stockade serve``), those of every worker, added up."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return generate_latest(), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry), CONTENT_TYPE_LATEST


# -- budgets (billing.budgets) ------------------------------------------------------------------
# Labelled by budget name: budgets come from the store, a handful per resource.

BUDGET_SPENT_RATIO = Gauge(
    "stockade_budget_spent_ratio",
    "What each budget has spent this period, as a share of its amount (1 = all of it)",
    ["budget"],
    multiprocess_mode="max",
)
BUDGET_REFUSALS = Counter(
    "stockade_budget_refusals",
    "Calls refused by a hard budget (429 insufficient_quota), by budget",
    ["budget"],
)
