"""Persistence: SQLAlchemy Core tables, Alembic migrations and the Store that uses them."""

from stockade.store.records import ApiKey, Deployment, UsageRecord
from stockade.store.store import Store

__all__ = ["ApiKey", "Deployment", "Store", "UsageRecord"]
