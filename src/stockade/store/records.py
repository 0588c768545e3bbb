"""Plain records the store reads and writes; the rest of Stockade passes these around."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Deployment:
    name: str
    model: str
    backend: str
    capacity: int  # thousands of tokens per minute, as Azure's sku.capacity
    created_at: float
    updated_at: float
    content_filter: str | None = None  # the policy's name; None is the built-in default
    zero_data_retention: bool = False  # refuses files and batches, which keep bodies at rest
    batch_token_quota: int | None = None  # tokens its unfinished batches may hold; None: the setting
    sku: str = "Standard"  # or "ProvisionedManaged": billed per PTU-hour, not per token


@dataclass(frozen=True, slots=True)
class ModelFile:
    """A GGUF file of the user's own, deployable as a local chat model under ``id``."""

    id: str
    path: str  # absolute, on the machine of every replica that serves it
    architecture: str | None  # from the file's header, when it says
    context_tokens: int | None  # the length it was trained for, when its header says
    created_at: float


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
    # The content filter's decisions as "policy/direction/category/action", comma-separated.
    content_filter: str | None = None
    batch_id: str | None = None  # the batch whose line this call ran, which is priced as batch
    cost: float | None = None  # in billing.currency, set when written; None: its model has no price


@dataclass(frozen=True, slots=True)
class Identity:
    id: str
    kind: str  # "managed" or "service-principal"
    name: str
    client_id: str
    object_id: str
    secret_hash: str
    hint: str
    created_at: float
    secret_created_at: float


@dataclass(frozen=True, slots=True)
class RoleAssignment:
    """A role for a token principal (``tenant_id`` and ``object_id``) or a key (``key_id``)."""

    id: str
    role: str
    deployment: str | None
    tenant_id: str | None
    object_id: str | None
    key_id: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private_key: str  # encrypted PKCS#8 PEM
    public_jwk: dict[str, Any]
    created_at: float
    retired_at: float | None = None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    ts: float
    actor_id: str
    actor: str
    source: str
    action: str
    target: str | None
    status: int


@dataclass(frozen=True, slots=True)
class ResourceProperties:
    """Resource-wide access settings, as Azure's ``disableLocalAuth`` and ``networkAcls``."""

    disable_local_auth: bool = False
    default_action: str = "Allow"
    ip_rules: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    routine: str
    routine_version: str
    deployment: str
    embeddings_deployment: str
    case_id: str
    principal: str
    state: dict[str, Any]
    turn: int
    status: str
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class TraceEvent:
    ts: float
    turn: int
    kind: str
    step: str | None
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    conversation_id: str
    routine: str
    status: str
    opened_at: float
    closed_at: float | None = None
    reason: str | None = None
    evaluation: bool = False


@dataclass(frozen=True, slots=True)
class ContentFilter:
    """A content filter policy; ``config`` is ``safety.Policy.config()``'s shape."""

    name: str
    config: dict[str, Any]
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class BlocklistItem:
    id: str
    kind: str  # "exact" or "regex"
    pattern: str
    created_at: float


@dataclass(frozen=True, slots=True)
class Blocklist:
    name: str
    description: str
    created_at: float
    items: tuple[BlocklistItem, ...] = ()


@dataclass(frozen=True, slots=True)
class FileRecord:
    """An uploaded file (or a batch's output or error file); its contents are in chunks, sealed.
    ``lines``, ``url``, ``deployment`` and ``reserved_tokens`` summarise a batch input file."""

    id: str
    purpose: str
    filename: str
    bytes: int
    created_at: float
    status: str  # "processed" or "error"
    expires_at: float | None = None
    status_details: str | None = None
    created_by: str | None = None
    lines: int | None = None
    url: str | None = None
    deployment: str | None = None
    reserved_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """A batch job as stored; its lines' progress is counted from batch_lines."""

    id: str
    input_file_id: str
    endpoint: str
    deployment: str
    completion_window: str
    status: str
    created_at: float
    expires_at: float
    created_by: str
    total: int
    reserved_tokens: int
    in_progress_at: float | None = None
    finalizing_at: float | None = None
    completed_at: float | None = None
    failed_at: float | None = None
    expired_at: float | None = None
    cancelling_at: float | None = None
    cancelled_at: float | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: str | None = None  # JSON list of {code, message, param, line}
    metadata: str | None = None  # JSON object of strings
    output_expires_after: int | None = None
    api_version: str | None = None
    created_by_tenant: str | None = None
