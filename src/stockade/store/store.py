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

from stockade.store.records import ApiKey, Deployment, UsageRecord
from stockade.store.tables import api_keys, deployments, resource_meta, usage_records

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


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

    def insert_deployment(self, deployment: Deployment) -> bool:
        """Insert unless the name is taken; returns whether it was inserted."""
        with self.engine.begin() as connection:
            exists = connection.scalar(
                sa.select(deployments.c.name).where(deployments.c.name == deployment.name)
            )
            if exists:
                return False
            connection.execute(deployments.insert().values(**dataclasses.asdict(deployment)))
            self._bump(connection)
        return True

    def update_deployment(self, name: str, **values: Any) -> Deployment | None:
        with self.engine.begin() as connection:
            updated = connection.execute(
                deployments.update()
                .where(deployments.c.name == name)
                .values(**values, updated_at=time.time())
            )
            if updated.rowcount == 0:
                return None
            self._bump(connection)
        return self.get_deployment(name)

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

    def revoke_key(self, key_id: str) -> bool:
        with self.engine.begin() as connection:
            revoked = connection.execute(
                api_keys.update()
                .where(
                    api_keys.c.id == key_id,
                    api_keys.c.revoked_at.is_(None),
                    api_keys.c.kind == "application",
                )
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

    def recent_usage(self, limit: int = 50, deployment: str | None = None) -> Sequence[UsageRecord]:
        query = sa.select(*[c for c in usage_records.c if c.name != "id"])
        if deployment:
            query = query.where(usage_records.c.deployment == deployment)
        query = query.order_by(usage_records.c.id.desc()).limit(limit)
        with self.engine.connect() as connection:
            return [UsageRecord(**row._mapping) for row in connection.execute(query)]
