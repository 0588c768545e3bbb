"""Synchronous data access over SQLAlchemy Core; SQLite by default, PostgreSQL where it outgrows it.

Nothing here runs per inference request: the server keeps deployments and keys in memory and
writes usage in batches from a background task.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import operator
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from sqlalchemy.dialects import postgresql, sqlite

from stockade.private import private_file
from stockade.store.batches import BatchStore
from stockade.store.budgets import BudgetStore
from stockade.store.files import FileStore
from stockade.store.records import (
    ApiKey,
    AuditEvent,
    Blocklist,
    BlocklistItem,
    Case,
    ContentFilter,
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
from stockade.store.responses import ResponseStore
from stockade.store.tables import (
    api_keys,
    audit_events,
    blocklist_items,
    blocklists,
    cases,
    content_filters,
    conversation_events,
    conversation_messages,
    conversations,
    deployments,
    identities,
    model_files,
    model_quotas,
    resource_meta,
    role_assignments,
    signing_keys,
    usage_batches,
    usage_records,
)
from stockade.store.usage import UsageStore

log = logging.getLogger(__name__)
# Alembic says at INFO which database it found, in every process on every start; what changed is
# said once, by Store.migrate.
logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)

MIGRATIONS = Path(__file__).parent / "migrations"
USAGE_FIELDS = [field.name for field in dataclasses.fields(UsageRecord)]


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


def _insert_or_ignore(dialect: str, table: sa.Table) -> Any:
    """An INSERT that does nothing when the row's key exists, on SQLite and PostgreSQL."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing()


def store_exists(url: str) -> bool:
    """Whether ``url`` holds a Stockade store (its tables), found without creating anything: a
    missing SQLite file, or a database without the tables, is no store."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite" and not (
        parsed.database and parsed.database != ":memory:" and Path(parsed.database).is_file()
    ):
        return False
    # A plain engine, without the pragmas Store sets: looking must change nothing.
    engine = sa.create_engine(url)
    try:
        return sa.inspect(engine).has_table(resource_meta.name)
    finally:
        engine.dispose()


def shown_url(url: str) -> str:
    """The store's URL as it may be printed: without its password."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)


class QuotaExceeded(Exception):
    """A model's deployments would need more capacity than its quota."""

    def __init__(self, model: str, quota: int, allocated: int, requested: int) -> None:
        super().__init__(f"quota {quota} for {model}: {allocated} allocated, {requested} requested")
        self.model = model
        self.quota = quota
        self.allocated = allocated
        self.requested = requested


class InUse(Exception):
    """What others use cannot be deleted: a model file that deployments serve, a content filter
    policy that deployments use, a blocklist that policies use. ``users`` names them."""

    def __init__(self, users: list[str]) -> None:
        super().__init__(users)
        self.users = users


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite"):
            database = sa.engine.make_url(url).database
            if database and database != ":memory:":
                # SQLite gives its -wal and -shm files the database file's own mode.
                private_file(Path(database))
            self.engine = sa.create_engine(url)
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = sa.create_engine(url, pool_pre_ping=True)
        self._usage_insert: tuple[str, Sequence[str], bool] | None = None

    def close(self) -> None:
        self.engine.dispose()

    @functools.cached_property
    def batches(self) -> BatchStore:
        return BatchStore(self.engine)

    @functools.cached_property
    def files(self) -> FileStore:
        return FileStore(self.engine)

    @functools.cached_property
    def responses(self) -> ResponseStore:
        return ResponseStore(self.engine)

    @functools.cached_property
    def usage(self) -> UsageStore:
        """Rollups, summaries, spend and prices (store/usage.py)."""
        return UsageStore(self.engine, self._bump)

    @functools.cached_property
    def budgets(self) -> BudgetStore:
        return BudgetStore(self.engine, self._bump)

    def migrate(self) -> None:
        """Bring the schema to the newest revision; safe to run on every start."""
        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            before = MigrationContext.configure(connection).get_current_revision()
            command.upgrade(config, "head")
            after = MigrationContext.configure(connection).get_current_revision()
        if after != before:
            log.info("Upgraded the store's schema from %s to %s", before or "(empty)", after)

    # -- change tracking -------------------------------------------------------------------

    def revision(self) -> int:
        with self.engine.connect() as connection:
            value = connection.scalar(
                sa.select(resource_meta.c.value).where(resource_meta.c.name == "revision")
            )
        return int(value or 0)

    @staticmethod
    def _meta(connection: sa.Connection, name: str) -> str | None:
        return connection.scalar(sa.select(resource_meta.c.value).where(resource_meta.c.name == name))

    @staticmethod
    def _set_meta(connection: sa.Connection, name: str, value: str) -> None:
        updated = connection.execute(
            resource_meta.update().where(resource_meta.c.name == name).values(value=value)
        )
        if updated.rowcount == 0:
            connection.execute(resource_meta.insert().values(name=name, value=value))

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

    # -- content filter policies and blocklists ----------------------------------------------

    def list_content_filters(self) -> list[ContentFilter]:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(content_filters).order_by(content_filters.c.name))
            return [ContentFilter(row.name, json.loads(row.config), row.created_at, row.updated_at) for row in rows]

    def put_content_filter(self, policy: ContentFilter, *, create: bool) -> bool:
        """Insert (``create``) unless the name is taken, or replace an existing one; returns
        whether it was written."""
        with self.engine.begin() as connection:
            self._bump(connection)
            exists = connection.scalar(
                sa.select(content_filters.c.name).where(content_filters.c.name == policy.name)
            )
            if bool(exists) == create:
                connection.rollback()
                return False
            values = {**dataclasses.asdict(policy), "config": json.dumps(policy.config)}
            if create:
                connection.execute(content_filters.insert().values(**values))
            else:
                del values["created_at"]
                connection.execute(
                    content_filters.update().where(content_filters.c.name == policy.name).values(**values)
                )
        return True

    def delete_content_filter(self, name: str) -> bool:
        """Delete it unless deployments use it (``InUse``); returns whether it existed."""
        with self.engine.begin() as connection:
            self._bump(connection)  # first: no deployment can take it up meanwhile
            users = list(connection.scalars(
                sa.select(deployments.c.name).where(deployments.c.content_filter == name)
                .order_by(deployments.c.name)
            ))
            if users:
                raise InUse(users)
            deleted = connection.execute(content_filters.delete().where(content_filters.c.name == name))
            if not deleted.rowcount:
                connection.rollback()
        return bool(deleted.rowcount)

    def list_blocklists(self) -> list[Blocklist]:
        with self.engine.connect() as connection:
            lists = connection.execute(sa.select(blocklists).order_by(blocklists.c.name)).all()
            items: dict[str, list[BlocklistItem]] = {}
            query = sa.select(blocklist_items).order_by(blocklist_items.c.created_at, blocklist_items.c.id)
            for row in connection.execute(query):
                items.setdefault(row.blocklist, []).append(
                    BlocklistItem(row.id, row.kind, row.pattern, row.created_at)
                )
        return [
            Blocklist(row.name, row.description, row.created_at, tuple(items.get(row.name, ())))
            for row in lists
        ]

    def insert_blocklist(self, blocklist: Blocklist) -> bool:
        with self.engine.begin() as connection:
            self._bump(connection)
            if connection.scalar(sa.select(blocklists.c.name).where(blocklists.c.name == blocklist.name)):
                connection.rollback()
                return False
            connection.execute(
                blocklists.insert().values(
                    name=blocklist.name, description=blocklist.description, created_at=blocklist.created_at
                )
            )
        return True

    def delete_blocklist(self, name: str) -> bool:
        """Delete it and its items unless policies use it (``InUse``); returns whether it existed."""
        with self.engine.begin() as connection:
            self._bump(connection)
            users = [
                row.name for row in connection.execute(sa.select(content_filters).order_by(content_filters.c.name))
                if name in json.loads(row.config).get("blocklists", [])
            ]
            if users:
                raise InUse(users)
            deleted = connection.execute(blocklists.delete().where(blocklists.c.name == name))
            connection.execute(blocklist_items.delete().where(blocklist_items.c.blocklist == name))
            if not deleted.rowcount:
                connection.rollback()
        return bool(deleted.rowcount)

    def insert_blocklist_item(self, blocklist: str, item: BlocklistItem, limit: int) -> bool | None:
        """Add ``item``; False if the list has ``limit`` items already, None if there is no
        such list."""
        with self.engine.begin() as connection:
            self._bump(connection)
            if not connection.scalar(sa.select(blocklists.c.name).where(blocklists.c.name == blocklist)):
                connection.rollback()
                return None
            count = connection.scalar(
                sa.select(sa.func.count()).select_from(blocklist_items).where(blocklist_items.c.blocklist == blocklist)
            )
            if int(count or 0) >= limit:
                connection.rollback()
                return False
            connection.execute(blocklist_items.insert().values(blocklist=blocklist, **dataclasses.asdict(item)))
        return True

    def delete_blocklist_item(self, blocklist: str, item_id: str) -> bool:
        with self.engine.begin() as connection:
            deleted = connection.execute(
                blocklist_items.delete().where(
                    blocklist_items.c.blocklist == blocklist, blocklist_items.c.id == item_id
                )
            )
            if deleted.rowcount:
                self._bump(connection)
        return bool(deleted.rowcount)

    # -- the user's model files ---------------------------------------------------------------

    def list_model_files(self) -> list[ModelFile]:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(model_files).order_by(model_files.c.id))
            return [ModelFile(**row._mapping) for row in rows]

    def insert_model_file(self, model: ModelFile) -> bool:
        """Insert unless the id is taken; returns whether it was inserted."""
        with self.engine.begin() as connection:
            self._bump(connection)
            if connection.scalar(sa.select(model_files.c.id).where(model_files.c.id == model.id)):
                connection.rollback()
                return False
            connection.execute(model_files.insert().values(**dataclasses.asdict(model)))
        return True

    def delete_model_file(self, model: str) -> bool:
        """Delete it unless deployments use it (``InUse``); returns whether it existed."""
        with self.engine.begin() as connection:
            self._bump(connection)  # first: a deployment of it cannot be created meanwhile
            if not connection.scalar(sa.select(model_files.c.id).where(model_files.c.id == model)):
                connection.rollback()
                return False
            users = list(connection.scalars(
                sa.select(deployments.c.name).where(deployments.c.model == model, deployments.c.backend == "local")
                .order_by(deployments.c.name)
            ))
            if users:
                raise InUse(users)
            connection.execute(model_files.delete().where(model_files.c.id == model))
        return True

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

    # -- the resource's access settings ---------------------------------------------------------

    def tenant_id(self) -> str:
        """The built-in token service's tenant, a GUID chosen on first use."""
        with self.engine.connect() as connection:
            tenant = self._meta(connection, "tenant_id")
        if tenant is not None:
            return tenant
        with self.engine.begin() as connection:
            self._bump(connection)  # takes the write lock, so that replicas agree on one tenant
            tenant = self._meta(connection, "tenant_id")
            if tenant is None:
                tenant = str(uuid.uuid4())
                self._set_meta(connection, "tenant_id", tenant)
        return tenant

    def resource_properties(self) -> ResourceProperties:
        with self.engine.connect() as connection:
            stored = self._meta(connection, "access")
        if stored is None:
            return ResourceProperties()
        values = json.loads(stored)
        return ResourceProperties(
            values["disable_local_auth"], values["default_action"], tuple(values["ip_rules"])
        )

    def set_resource_properties(self, properties: ResourceProperties) -> None:
        with self.engine.begin() as connection:
            self._set_meta(connection, "access", json.dumps(dataclasses.asdict(properties)))
            self._bump(connection)

    # -- identities -------------------------------------------------------------------------------

    def list_identities(self) -> list[Identity]:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(identities).order_by(identities.c.kind, identities.c.name))
            return [Identity(**row._mapping) for row in rows]

    def insert_identity(self, identity: Identity) -> bool:
        """Insert unless an identity of the same kind has the name; returns whether it did."""
        with self.engine.begin() as connection:
            taken = connection.scalar(
                sa.select(identities.c.id).where(
                    identities.c.name == identity.name, identities.c.kind == identity.kind
                )
            )
            if taken:
                return False
            connection.execute(identities.insert().values(**dataclasses.asdict(identity)))
            self._bump(connection)
        return True

    def replace_identity_secret(self, identity_id: str, secret_hash: str, hint: str) -> Identity | None:
        with self.engine.begin() as connection:
            updated = connection.execute(
                identities.update()
                .where(identities.c.id == identity_id)
                .values(secret_hash=secret_hash, hint=hint, secret_created_at=time.time())
            )
            if updated.rowcount == 0:
                return None
            self._bump(connection)
            row = connection.execute(sa.select(identities).where(identities.c.id == identity_id)).one()
        return Identity(**row._mapping)

    def delete_identity(self, identity_id: str, tenant_id: str) -> bool:
        """Delete an identity and the roles assigned to it."""
        with self.engine.begin() as connection:
            object_id = connection.scalar(
                sa.select(identities.c.object_id).where(identities.c.id == identity_id)
            )
            if object_id is None:
                return False
            connection.execute(identities.delete().where(identities.c.id == identity_id))
            connection.execute(
                role_assignments.delete().where(
                    role_assignments.c.tenant_id == tenant_id,
                    role_assignments.c.object_id == object_id,
                )
            )
            self._bump(connection)
        return True

    # -- role assignments -------------------------------------------------------------------------

    def list_role_assignments(self) -> list[RoleAssignment]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(role_assignments).order_by(role_assignments.c.created_at)
            )
            return [RoleAssignment(**row._mapping) for row in rows]

    def insert_role_assignment(self, assignment: RoleAssignment) -> RoleAssignment:
        """Insert, or return the equal assignment that exists already."""
        same = [
            getattr(role_assignments.c, name) == value
            if value is not None
            else getattr(role_assignments.c, name).is_(None)
            for name, value in dataclasses.asdict(assignment).items()
            if name not in ("id", "created_at")
        ]
        with self.engine.begin() as connection:
            self._bump(connection)
            row = connection.execute(sa.select(role_assignments).where(*same)).first()
            if row is not None:
                return RoleAssignment(**row._mapping)
            connection.execute(role_assignments.insert().values(**dataclasses.asdict(assignment)))
        return assignment

    def delete_role_assignment(self, assignment_id: str) -> bool:
        with self.engine.begin() as connection:
            deleted = connection.execute(
                role_assignments.delete().where(role_assignments.c.id == assignment_id)
            )
            if deleted.rowcount:
                self._bump(connection)
        return bool(deleted.rowcount)

    # -- signing keys -----------------------------------------------------------------------------

    def signing_keys(self) -> list[SigningKey]:
        """Published keys, newest (the one that signs) first."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(signing_keys).order_by(signing_keys.c.created_at.desc())
            )
            return [
                SigningKey(**{**row._mapping, "public_jwk": json.loads(row.public_jwk)})
                for row in rows
            ]

    def add_signing_key(self, key: SigningKey, *, only_if_none: bool = False, keep: int = 2) -> bool:
        """Make ``key`` the signing key: the one before it is retired but still published, older
        ones are deleted. With ``only_if_none``, do nothing if a key exists already."""
        with self.engine.begin() as connection:
            self._bump(connection)
            if only_if_none and connection.scalar(sa.select(sa.func.count()).select_from(signing_keys)):
                return False
            connection.execute(
                signing_keys.update().where(signing_keys.c.retired_at.is_(None)).values(retired_at=key.created_at)
            )
            row = {**dataclasses.asdict(key), "public_jwk": json.dumps(key.public_jwk)}
            connection.execute(signing_keys.insert().values(**row))
            kept = sa.select(signing_keys.c.kid).order_by(signing_keys.c.created_at.desc()).limit(keep)
            connection.execute(signing_keys.delete().where(signing_keys.c.kid.not_in(kept)))
        return True

    # -- audit ------------------------------------------------------------------------------------

    def insert_audit(self, event: AuditEvent) -> None:
        with self.engine.begin() as connection:
            connection.execute(audit_events.insert().values(**dataclasses.asdict(event)))

    def list_audit(self, limit: int = 50, action: str | None = None) -> list[AuditEvent]:
        query = sa.select(*[c for c in audit_events.c if c.name != "id"])
        if action:
            query = query.where(audit_events.c.action.startswith(action, autoescape=True))
        query = query.order_by(audit_events.c.id.desc()).limit(limit)
        with self.engine.connect() as connection:
            return [AuditEvent(**row._mapping) for row in connection.execute(query)]

    # -- usage --------------------------------------------------------------------------------

    def insert_usage(self, records: Sequence[UsageRecord], batch_id: str | None = None) -> bool:
        """One batch in one transaction, straight to the driver's executemany: usage is written
        at the rate calls are made, and SQLAlchemy's per-row work cost several times the insert
        itself (docs/performance.md). A batch whose id was written before is not written again
        (False): one replayed from the spool may have reached the store before its outage."""
        if not records:
            return True
        if self._usage_insert is None:
            compiled = usage_records.insert().compile(dialect=self.engine.dialect, column_keys=USAGE_FIELDS)
            self._usage_insert = (str(compiled), compiled.positiontup or USAGE_FIELDS, compiled.positional)
        sql, order, positional = self._usage_insert
        values = operator.attrgetter(*order)
        rows: list[Any] = [values(record) for record in records]
        if not positional:
            rows = [dict(zip(order, row, strict=True)) for row in rows]
        with self.engine.begin() as connection:
            if batch_id is not None and not self._first_time(connection, batch_id):
                return False
            connection.exec_driver_sql(sql, rows)
            self.usage.add_rollups(connection, records)  # with the records, or not at all
        return True

    def _first_time(self, connection: sa.Connection, batch_id: str) -> bool:
        """Whether the usage batch ``batch_id`` is new; it is marked written in the transaction
        that writes it. A concurrent writer of the same batch waits on the row, then finds it."""
        insert = _insert_or_ignore(self.engine.dialect.name, usage_batches)
        marked = insert.values(id=batch_id, written_at=time.time()).returning(usage_batches.c.id)
        return connection.execute(marked).first() is not None

    def forget_usage_batches(self, before: float) -> int:
        """Forget the ids of usage batches written before ``before`` (a spooled batch older than
        that was written or lost long ago); returns how many."""
        with self.engine.begin() as connection:
            deleted = connection.execute(usage_batches.delete().where(usage_batches.c.written_at < before))
            return deleted.rowcount

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

    def spent(
        self, since: float, until: float | None = None, *, deployment: str | None = None,
        key_id: str | None = None,
    ) -> float:
        """The cost of the calls made in [since, until), of one deployment or key if given: whole
        hours from the rollups, the partial hours at either end from the records."""
        return self.usage.spent(since, until, deployment=deployment, key_id=key_id)

    def recent_usage(
        self, limit: int = 50, deployment: str | None = None, key_ids: Sequence[str] | None = None,
        *, since: float | None = None, until: float | None = None, content_filtered: bool = False,
    ) -> Sequence[tuple[UsageRecord, str | None]]:
        """The newest records, of one deployment's calls, some callers' and a time range if
        given (only those the content filter acted on, if ``content_filtered``), each with the
        name of the key or identity that made the call (revoked keys' too), if this store knows
        it."""
        caller = sa.func.coalesce(api_keys.c.name, identities.c.name).label("key_name")
        query = sa.select(*[c for c in usage_records.c if c.name != "id"], caller).select_from(
            usage_records.outerjoin(api_keys, api_keys.c.id == usage_records.c.key_id).outerjoin(
                identities, identities.c.object_id == usage_records.c.key_id
            )
        )
        if deployment:
            query = query.where(usage_records.c.deployment == deployment)
        if key_ids is not None:
            query = query.where(usage_records.c.key_id.in_(key_ids))
        if since is not None:
            query = query.where(usage_records.c.ts >= since)
        if until is not None:
            query = query.where(usage_records.c.ts < until)
        if content_filtered:
            query = query.where(usage_records.c.content_filter.is_not(None))
        query = query.order_by(usage_records.c.id.desc()).limit(limit)
        with self.engine.connect() as connection:
            return [
                (UsageRecord(**{field: row._mapping[field] for field in USAGE_FIELDS}), row.key_name)
                for row in connection.execute(query)
            ]

    # -- conversations and cases ------------------------------------------------------------------

    def insert_conversation(self, conversation: Conversation, case: Case) -> None:
        row = dataclasses.asdict(conversation)
        row["state"] = json.dumps(conversation.state)
        with self.engine.begin() as connection:
            connection.execute(cases.insert().values(**dataclasses.asdict(case)))
            connection.execute(conversations.insert().values(**row))

    def get_conversation(self, conversation_id: str) -> Conversation | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(conversations).where(conversations.c.id == conversation_id)
            ).first()
        if row is None:
            return None
        values = dict(row._mapping)
        values["state"] = json.loads(values["state"])
        return Conversation(**values)

    def save_turn(
        self,
        conversation: Conversation,
        state: dict[str, Any],
        status: str,
        events: Sequence[TraceEvent],
        messages: Sequence[tuple[str, str]] = (),
    ) -> bool:
        """Store a turn's outcome unless another turn of the same conversation got there first."""
        now = time.time()
        with self.engine.begin() as connection:
            updated = connection.execute(
                conversations.update()
                .where(conversations.c.id == conversation.id, conversations.c.turn == conversation.turn)
                .values(state=json.dumps(state), status=status, turn=conversation.turn + 1, updated_at=now)
            ).rowcount
            if not updated:
                return False
            if events:
                connection.execute(conversation_events.insert(), [
                    {"conversation_id": conversation.id, "ts": event.ts, "turn": event.turn,
                     "kind": event.kind, "step": event.step, "detail": json.dumps(event.detail)}
                    for event in events
                ])
            if messages:
                connection.execute(conversation_messages.insert(), [
                    {"conversation_id": conversation.id, "ts": now, "turn": conversation.turn + 1,
                     "role": role, "content": content}
                    for role, content in messages
                ])
        return True

    # A conversation's trace and messages are read up to the turn its row was read at, so that
    # a turn stored between the two reads does not show in one and not the other.

    def trace(self, conversation_id: str, through_turn: int) -> list[TraceEvent]:
        query = (
            sa.select(conversation_events.c.ts, conversation_events.c.turn, conversation_events.c.kind,
                      conversation_events.c.step, conversation_events.c.detail)
            .where(conversation_events.c.conversation_id == conversation_id,
                   conversation_events.c.turn <= through_turn)
            .order_by(conversation_events.c.id)
        )
        with self.engine.connect() as connection:
            return [
                TraceEvent(ts, turn, kind, step, json.loads(detail))
                for ts, turn, kind, step, detail in connection.execute(query)
            ]

    def conversation_messages(self, conversation_id: str, through_turn: int) -> list[tuple[str, str]]:
        query = (
            sa.select(conversation_messages.c.role, conversation_messages.c.content)
            .where(conversation_messages.c.conversation_id == conversation_id,
                   conversation_messages.c.turn <= through_turn)
            .order_by(conversation_messages.c.id)
        )
        with self.engine.connect() as connection:
            return [(role, content) for role, content in connection.execute(query)]

    def close_case(self, case_id: str, status: str, reason: str | None = None) -> Case | None:
        """Close an open case; a case already closed stays as it was closed."""
        with self.engine.begin() as connection:
            connection.execute(
                cases.update()
                .where(cases.c.id == case_id, cases.c.status == "open")
                .values(status=status, closed_at=time.time(), reason=reason)
            )
        return self.get_case(case_id)

    def get_case(self, case_id: str) -> Case | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(cases).where(cases.c.id == case_id)).first()
        return Case(**row._mapping) if row else None

    def list_cases(
        self, limit: int = 50, status: str | None = None, *, include_evaluations: bool = False
    ) -> list[Case]:
        query = sa.select(cases)
        if status:
            query = query.where(cases.c.status == status)
        if not include_evaluations:
            query = query.where(sa.not_(cases.c.evaluation))
        query = query.order_by(cases.c.opened_at.desc()).limit(limit)
        with self.engine.connect() as connection:
            return [Case(**row._mapping) for row in connection.execute(query)]
