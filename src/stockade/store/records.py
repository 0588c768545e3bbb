"""Plain records the store reads and writes; the rest of Stockade passes these around."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Deployment:
    name: str
    model: str
    backend: str
    capacity: int  # thousands of tokens per minute, as Azure's sku.capacity
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    kind: str  # "admin" or "application"
    role: str
    deployment: str | None
    secret_hash: str
    hint: str
    created_at: float
    revoked_at: float | None = None
    tokens_per_minute: int | None = None  # the key's own limits, on top of the deployment's
    requests_per_minute: int | None = None


@dataclass(frozen=True, slots=True)
class RecentUse:
    """What a deployment processed over the last minute."""

    tokens: int
    requests: int


@dataclass(frozen=True, slots=True)
class UsageRecord:
    ts: float
    request_id: str
    operation: str
    deployment: str | None
    model: str | None
    key_id: str | None
    status: int
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
