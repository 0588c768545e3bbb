"""Persistence: SQLAlchemy Core tables, Alembic migrations and the Store that uses them."""

from stockade.store.records import ApiKey, Deployment, RecentUse, UsageRecord
from stockade.store.store import QuotaExceeded, Store

__all__ = ["ApiKey", "Deployment", "QuotaExceeded", "RecentUse", "Store", "UsageRecord"]
