"""Synchronous data access over SQLAlchemy Core; SQLite by default, PostgreSQL where it outgrows it.

Nothing here runs per inference request: the server keeps deployments and keys in memory and
writes usage in batches from a background task.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig

from stockade.store.records import ApiKey, Deployment, RecentUse, UsageRecord
from stockade.store.tables import api_keys, deployments, model_quotas, resource_meta, usage_records

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _active_application_key(key_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(
        api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None), api_keys.c.kind == "application"
    )


class QuotaExceeded(Exception):
    """A model's deployments would need more capacity than its quota."""

    def __init__(self, model: str, quota: int, allocated: int, requested: int) -> None:
        super().__init__(f"quota {quota} for {model}: {allocated} allocated, {requested} requested")
        self.model = model
        self.quota = quota
        self.allocated = allocated
        self.requested = requested


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite"):
            database = sa.engine.make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            self.engine = sa.create_engine(url)
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = sa.create_engine(url, pool_pre_ping=True)

    def close(self) -> None:
        self.engine.dispose()

    def migrate(self) -> None:
        """Bring the schema to the newest revision; safe to run on every start."""
        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    # -- change tracking -------------------------------------------------------------------

    def revision(self) -> int:
        with self.engine.connect() as connection:
            value = connection.scalar(
                sa.select(resource_meta.c.value).where(resource_meta.c.name == "revision")
            )
        return int(value or 0)

    @staticmethod
    def _bump(connection: sa.Connection) -> None:
        updated = connection.execute(
            resource_meta.update()
            .where(resource_meta.c.name == "revision")
            .values(value=sa.cast(sa.cast(resource_meta.c.value, sa.Integer) + 1, sa.Text))
        )
        if updated.rowcount == 0:
            connection.execute(resource_meta.insert().values(name="revision", value="1"))

    # -- deployments -------------------------------------------------------------------------

    def list_deployments(self) -> list[Deployment]:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(deployments).order_by(deployments.c.name))
            return [Deployment(**row._mapping) for row in rows]

    def get_deployment(self, name: str) -> Deployment | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(deployments).where(deployments.c.name == name)
            ).first()
        return Deployment(**row._mapping) if row else None

    def insert_deployment(self, deployment: Deployment, default_quota: int) -> bool:
        """Insert unless the name is taken; returns whether it was inserted. Raises
        ``QuotaExceeded`` if the model's quota has too little left for its capacity."""
        with self.engine.begin() as connection:
            # Bumping first takes the write lock, so that concurrent changes cannot both spend
            # the same remaining quota.
            self._bump(connection)
            exists = connection.scalar(
                sa.select(deployments.c.name).where(deployments.c.name == deployment.name)
            )
            if exists:
                connection.rollback()
                return False
            self._check_quota(connection, deployment.model, deployment.capacity, default_quota)
            connection.execute(deployments.insert().values(**dataclasses.asdict(deployment)))
        return True

    def update_deployment(self, name: str, default_quota: int, **values: Any) -> Deployment | None:
        with self.engine.begin() as connection:
            self._bump(connection)
            row = connection.execute(sa.select(deployments).where(deployments.c.name == name)).first()
            if row is None:
                connection.rollback()
                return None
            changed = dataclasses.replace(Deployment(**row._mapping), **values)
            self._check_quota(connection, changed.model, changed.capacity, default_quota, name)
            connection.execute(
                deployments.update()
                .where(deployments.c.name == name)
                .values(**values, updated_at=time.time())
            )
        return self.get_deployment(name)

    @staticmethod
    def _allocated(connection: sa.Connection, model: str, excluding: str | None = None) -> int:
        query = sa.select(sa.func.coalesce(sa.func.sum(deployments.c.capacity), 0)).where(
            deployments.c.model == model
        )
        if excluding is not None:
            query = query.where(deployments.c.name != excluding)
        return int(connection.scalar(query) or 0)

    def _check_quota(
        self,
        connection: sa.Connection,
        model: str,
        capacity: int,
        default_quota: int,
        excluding: str | None = None,
    ) -> None:
        quota = connection.scalar(
            sa.select(model_quotas.c.capacity).where(model_quotas.c.model == model)
        )
        quota = default_quota if quota is None else int(quota)
        allocated = self._allocated(connection, model, excluding)
        if allocated + capacity > quota:
            raise QuotaExceeded(model, quota, allocated, capacity)

    # -- quotas --------------------------------------------------------------------------------

    def model_quotas(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            return {row.model: row.capacity for row in connection.execute(sa.select(model_quotas))}

    def set_model_quota(self, model: str, capacity: int) -> None:
        """Raises ``QuotaExceeded`` (requested 0) if deployments already hold more."""
        with self.engine.begin() as connection:
            self._bump(connection)
            allocated = self._allocated(connection, model)
            if capacity < allocated:
                raise QuotaExceeded(model, capacity, allocated, 0)
            updated = connection.execute(
                model_quotas.update().where(model_quotas.c.model == model).values(capacity=capacity)
            )
            if updated.rowcount == 0:
                connection.execute(model_quotas.insert().values(model=model, capacity=capacity))

    def delete_deployment(self, name: str) -> bool:
        with self.engine.begin() as connection:
            deleted = connection.execute(deployments.delete().where(deployments.c.name == name))
            if deleted.rowcount:
                self._bump(connection)
        return bool(deleted.rowcount)

    # -- keys ----------------------------------------------------------------------------------

    def active_keys(self) -> list[ApiKey]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(api_keys)
                .where(api_keys.c.revoked_at.is_(None))
                .order_by(api_keys.c.kind, api_keys.c.name)
            )
            return [ApiKey(**row._mapping) for row in rows]

    def insert_key(self, key: ApiKey) -> bool:
        """Insert unless an active key has the same name; returns whether it was inserted."""
        with self.engine.begin() as connection:
            taken = connection.scalar(
                sa.select(api_keys.c.id).where(
                    api_keys.c.name == key.name, api_keys.c.revoked_at.is_(None)
                )
            )
            if taken:
                return False
            connection.execute(api_keys.insert().values(**dataclasses.asdict(key)))
            self._bump(connection)
        return True

    def replace_key_secret(self, name: str, secret_hash: str, hint: str) -> ApiKey | None:
        with self.engine.begin() as connection:
            updated = connection.execute(
                api_keys.update()
                .where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
                .values(secret_hash=secret_hash, hint=hint, created_at=time.time())
            )
            if updated.rowcount == 0:
                return None
            self._bump(connection)
            row = connection.execute(
                sa.select(api_keys).where(api_keys.c.secret_hash == secret_hash)
            ).one()
        return ApiKey(**row._mapping)

    def set_key_limits(
        self, key_id: str, tokens_per_minute: int | None, requests_per_minute: int | None
    ) -> ApiKey | None:
        """Set an active application key's own limits (None removes one)."""
        with self.engine.begin() as connection:
            updated = connection.execute(
                api_keys.update()
                .where(_active_application_key(key_id))
                .values(tokens_per_minute=tokens_per_minute, requests_per_minute=requests_per_minute)
            )
            if updated.rowcount == 0:
                return None
            self._bump(connection)
            row = connection.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).one()
        return ApiKey(**row._mapping)

    def revoke_key(self, key_id: str) -> bool:
        with self.engine.begin() as connection:
            revoked = connection.execute(
                api_keys.update()
                .where(_active_application_key(key_id))
                .values(revoked_at=time.time())
            )
            if revoked.rowcount:
                self._bump(connection)
        return bool(revoked.rowcount)

    # -- usage --------------------------------------------------------------------------------

    def insert_usage(self, records: Iterable[UsageRecord]) -> None:
        rows = [dataclasses.asdict(record) for record in records]
        if rows:
            with self.engine.begin() as connection:
                connection.execute(usage_records.insert(), rows)

    def use_since(self, since: float) -> dict[str, RecentUse]:
        """Tokens and admitted calls (all but 429s) per deployment since ``since``."""
        tokens = sa.func.coalesce(
            sa.func.sum(usage_records.c.prompt_tokens + usage_records.c.completion_tokens), 0
        )
        query = (
            sa.select(usage_records.c.deployment, tokens, sa.func.count())
            .where(
                usage_records.c.ts >= since,
                usage_records.c.status != 429,
                usage_records.c.deployment.is_not(None),
            )
            .group_by(usage_records.c.deployment)
        )
        with self.engine.connect() as connection:
            return {
                name: RecentUse(int(used), int(calls))
                for name, used, calls in connection.execute(query)
            }

    def recent_usage(self, limit: int = 50, deployment: str | None = None) -> Sequence[UsageRecord]:
        query = sa.select(*[c for c in usage_records.c if c.name != "id"])
        if deployment:
            query = query.where(usage_records.c.deployment == deployment)
        query = query.order_by(usage_records.c.id.desc()).limit(limit)
        with self.engine.connect() as connection:
            return [UsageRecord(**row._mapping) for row in connection.execute(query)]
