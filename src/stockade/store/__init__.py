"""Persistence: SQLAlchemy Core tables, Alembic migrations and the Store that uses them."""

from stockade.store.records import (
    ApiKey,
    AuditEvent,
    Deployment,
    Identity,
    RecentUse,
    ResourceProperties,
    RoleAssignment,
    SigningKey,
    UsageRecord,
)
from stockade.store.store import QuotaExceeded, Store

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Deployment",
    "Identity",
    "QuotaExceeded",
    "RecentUse",
    "ResourceProperties",
    "RoleAssignment",
    "SigningKey",
    "Store",
    "UsageRecord",
]
