"""Prometheus metrics, served at ``/metrics`` to holders of a key that may read the resource.

Each replica exposes its own (all its HTTP workers' together); Prometheus adds them up across
replicas.

Labels are bounded: deployments, models and keys are names from the store (a key's label is its
name, an Entra identity's its name in the store, anything else ``other``), operations and
reasons are fixed words, statuses the few codes Stockade sends. The histograms leave the key
out: a bucket series per key would multiply the series by the number of keys for figures that
are about the model, not the caller. docs/observability.md lists every series.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

if TYPE_CHECKING:
    from stockade.access import Principal
    from stockade.backends.base import PoolState

OTHER = "other"  # the label of whatever the store does not name

# Seconds: from a cache hit on a small model to a long generation on a CPU.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
TOKEN_TIME_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

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


# -- calls ----------------------------------------------------------------------------------------

REQUESTS = Counter(
    "stockade_requests",
    "Inference calls answered, by deployment, model, key, operation (ChatCompletions_Create, "
    "Completions_Create, Embeddings_Create) and HTTP status (499: the client went away)",
    ["deployment", "model", "key", "operation", "status"],
)
TOKENS = Counter(
    "stockade_tokens",
    "Tokens of inference calls and batch lines, by deployment, model, key and type (prompt, completion)",
    ["deployment", "model", "key", "type"],
)
REQUEST_DURATION = Histogram(
    "stockade_request_duration_seconds",
    "Whole inference calls, from the request's arrival to the response's last byte, by "
    "deployment, model and operation",
    ["deployment", "model", "operation"],
    buckets=LATENCY_BUCKETS,
)
TIME_TO_FIRST_TOKEN = Histogram(
    "stockade_time_to_first_token_seconds",
    "From a chat or text completion's arrival to its model's first output token (streamed or "
    "not), by deployment and model",
    ["deployment", "model"],
    buckets=LATENCY_BUCKETS,
)
TIME_PER_OUTPUT_TOKEN = Histogram(
    "stockade_time_per_output_token_seconds",
    "The model's time per output token after the first, by deployment and model",
    ["deployment", "model"],
    buckets=TOKEN_TIME_BUCKETS,
)
THROTTLED = Counter(
    "stockade_throttled_requests",
    "Inference calls refused with 429, by deployment, key and reason: deployment_tokens, "
    "deployment_requests, key_tokens, key_requests (rate limits), model_busy (a local model's "
    "queue is full), upstream (an upstream limited Stockade), authentication (too many wrong "
    "secrets), budget (a hard budget is spent), other",
    ["deployment", "key", "reason"],
)
BATCH_LINES = Counter(
    "stockade_batch_lines",
    "Batch lines run, by outcome: completed, failed, requeued (their deployment had no room; "
    "they run later)",
    ["outcome"],
)


@functools.lru_cache(maxsize=4096)
def _request(deployment: str, model: str, key: str, operation: str, status: int) -> Counter:
    return REQUESTS.labels(deployment, model, key, operation, str(status))


@functools.lru_cache(maxsize=4096)
def _tokens(deployment: str, model: str, key: str) -> tuple[Counter, Counter]:
    return TOKENS.labels(deployment, model, key, "prompt"), TOKENS.labels(deployment, model, key, "completion")


@functools.lru_cache(maxsize=1024)
def _duration(deployment: str, model: str, operation: str) -> Histogram:
    return REQUEST_DURATION.labels(deployment, model, operation)


@functools.lru_cache(maxsize=1024)
def _token_times(deployment: str, model: str) -> tuple[Histogram, Histogram]:
    return TIME_TO_FIRST_TOKEN.labels(deployment, model), TIME_PER_OUTPUT_TOKEN.labels(deployment, model)


def generation_timed(
    deployment: str | None, model: str | None, to_first_token: float, per_output_token: float | None
) -> None:
    """A completion's time to its first output token, and per output token after it."""
    to_first, per_token = _token_times(deployment or OTHER, model or OTHER)
    to_first.observe(to_first_token)
    if per_output_token is not None:
        per_token.observe(per_output_token)


@functools.lru_cache(maxsize=4096)
def throttled(deployment: str, key: str, reason: str) -> Counter:
    return THROTTLED.labels(deployment, key, reason)


@functools.lru_cache(maxsize=8)
def batch_line(outcome: str) -> Counter:
    return BATCH_LINES.labels(outcome)


def answered(
    deployment: str | None,
    model: str | None,
    key: str,
    operation: str,
    status: int,
    seconds: float,
    prompt_tokens: int,
    completion_tokens: int,
) -> None:
    """One inference call, once its response has been sent."""
    deployment, model = deployment or OTHER, model or OTHER
    _request(deployment, model, key, operation, status).inc()
    tokens(deployment, model, key, prompt_tokens, completion_tokens)
    _duration(deployment, model, operation).observe(seconds)


def tokens(deployment: str | None, model: str | None, key: str, prompt_tokens: int, completion_tokens: int) -> None:
    """The tokens of a call: an interactive one (``answered``) or a batch line."""
    if prompt_tokens or completion_tokens:
        prompt, completion = _tokens(deployment or OTHER, model or OTHER, key)
        prompt.inc(prompt_tokens)
        completion.inc(completion_tokens)


def key_label(principal: Principal | None) -> str:
    """A caller's label in the metrics: its name in the store (a key's, or an Entra identity's),
    else "other", so that the series are as many as the store's names, not as callers. A token
    holder without grants is no one the store knows (its name is the token's client id), and one
    whose name is its id has no name in the store."""
    if principal is None or not principal.grants or principal.name == principal.id:
        return OTHER
    return principal.name


def batch_lines(outcomes: Iterable[str | None]) -> None:
    """The outcomes of a round of batch lines: a line's state, or None for one put back."""
    for outcome in outcomes:
        batch_line("requeued" if outcome is None else outcome).inc()


# -- local models, read at scrape time --------------------------------------------------------------


def model_pools(states: Mapping[str, PoolState]) -> bytes:
    """The deployed local models' workers and queues, in Prometheus's text format. Read from the
    pools when scraped (they live in the replica's hub, which every HTTP worker reaches), so that
    every worker reports the same figures and no process writes them on the request path."""
    workers = GaugeMetricFamily(
        "stockade_model_workers", "Worker processes of a local model running now", labels=["model"]
    )
    busy = GaugeMetricFamily(
        "stockade_model_busy_workers", "Workers of a local model running a request now",
        labels=["model"],
    )
    waiting = GaugeMetricFamily(
        "stockade_model_queue_depth", "Requests waiting for a free worker of a local model",
        labels=["model"],
    )
    for model, state in sorted(states.items()):
        workers.add_metric([model], state["workers"])
        busy.add_metric([model], state["busy"])
        waiting.add_metric([model], state["waiting"])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Read([workers, busy, waiting]))
    return generate_latest(registry)


class _Read:
    """A collector of figures already read."""

    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self._families = families

    def collect(self) -> list[GaugeMetricFamily]:
        return self._families


def exposition(extra: bytes = b"") -> tuple[bytes, str]:
    """The metrics in Prometheus's text format, and its content type. With several HTTP workers
    (``PROMETHEUS_MULTIPROC_DIR`` set by ``stockade serve``), those of every worker, added up;
    ``extra`` (figures read at scrape time) appended."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return generate_latest() + extra, CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry) + extra, CONTENT_TYPE_LATEST


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
