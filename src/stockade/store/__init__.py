"""Persistence: SQLAlchemy Core tables, Alembic migrations and the Store that uses them."""

from stockade.store.records import (
    ApiKey,
    AuditEvent,
    Case,
    Conversation,
    Deployment,
    Identity,
    ModelFile,
    RecentUse,
    ResourceProperties,
    RoleAssignment,
    SigningKey,
    TraceEvent,
    UsageRecord,
)
from stockade.store.store import ModelInUse, QuotaExceeded, Store, shown_url, store_exists

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Case",
    "Conversation",
    "Deployment",
    "Identity",
    "ModelFile",
    "ModelInUse",
    "QuotaExceeded",
    "RecentUse",
    "ResourceProperties",
    "RoleAssignment",
    "SigningKey",
    "Store",
    "TraceEvent",
    "UsageRecord",
    "shown_url",
    "store_exists",
]
