"""Routine conversations, their traces and messages, and support cases.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("routine", sa.String(64), nullable=False),
        sa.Column("routine_version", sa.String(16), nullable=False),
        sa.Column("deployment", sa.String(64), nullable=False),
        sa.Column("embeddings_deployment", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(32), nullable=False),
        sa.Column("principal", sa.String(128), nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("turn", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "conversation_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.String(32), nullable=False, index=True),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("turn", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("step", sa.String(16), nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_table(
        "conversation_messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.String(32), nullable=False, index=True),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("conversation_id", sa.String(32), nullable=False),
        sa.Column("routine", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opened_at", sa.Float, nullable=False, index=True),
        sa.Column("closed_at", sa.Float, nullable=True),
        sa.Column("reason", sa.String(64), nullable=True),
    )


def downgrade() -> None:
    for table in ("cases", "conversation_messages", "conversation_events", "conversations"):
        op.drop_table(table)
