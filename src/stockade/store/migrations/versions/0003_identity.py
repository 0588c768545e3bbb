"""Identities, role assignments, signing keys and the audit log; usage names token principals.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identities",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(36), nullable=False, unique=True),
        sa.Column("object_id", sa.String(36), nullable=False, unique=True),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("hint", sa.String(8), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("secret_created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "role_assignments",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("deployment", sa.String(64), nullable=True),
        sa.Column("tenant_id", sa.String(64), nullable=True),
        sa.Column("object_id", sa.String(64), nullable=True),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("private_key", sa.Text, nullable=False),
        sa.Column("public_jwk", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("retired_at", sa.Float, nullable=True),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("actor_id", sa.String(128), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(256), nullable=True),
        sa.Column("status", sa.Integer, nullable=False),
    )
    op.create_index("ix_audit_events_ts", "audit_events", ["ts"])
    # SQLite ignores string lengths, and rebuilding a large usage table there would be slow.
    if op.get_context().dialect.name != "sqlite":
        op.alter_column("usage_records", "key_id", type_=sa.String(64))


def downgrade() -> None:
    if op.get_context().dialect.name != "sqlite":
        op.alter_column("usage_records", "key_id", type_=sa.String(32))
    for table in ("audit_events", "signing_keys", "role_assignments", "identities"):
        op.drop_table(table)
