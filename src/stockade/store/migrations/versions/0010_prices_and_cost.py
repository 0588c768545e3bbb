"""Prices per model with dated changes; each usage record's cost; each deployment's sku
(standard or provisioned); the usage batches already written, so that a batch replayed from the
spool after an outage is written once; hourly usage rollups, filled from the records there are.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

from stockade.store.usage import LATENCY_COLUMNS, backfill_rollups

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prices",
        sa.Column("model", sa.String(128), primary_key=True),
        sa.Column("effective_from", sa.Float, primary_key=True),
        sa.Column("input_per_million", sa.Float, nullable=False),
        sa.Column("output_per_million", sa.Float, nullable=False),
        sa.Column("batch_discount", sa.Float, nullable=False),
        sa.Column("hourly_rate", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    with op.batch_alter_table("usage_records") as table:
        table.add_column(sa.Column("cost", sa.Float, nullable=True))
    with op.batch_alter_table("deployments") as table:
        table.add_column(sa.Column("sku", sa.String(32), nullable=False, server_default="Standard"))
    op.create_table(
        "usage_batches",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("written_at", sa.Float, nullable=False),
    )
    _add_rollups()


def _add_rollups() -> None:
    """Usage per hour and per UTC day, and group (helper "usage"'s block of 0010)."""
    for name, period in (("usage_rollups", "hour"), ("usage_rollups_daily", "day")):
        op.create_table(
            name,
            sa.Column(period, sa.BigInteger, primary_key=True),
            sa.Column("deployment", sa.String(64), primary_key=True),
            sa.Column("key_id", sa.String(64), primary_key=True),
            sa.Column("model", sa.String(128), primary_key=True),
            sa.Column("operation", sa.String(64), primary_key=True),
            sa.Column("calls", sa.BigInteger, nullable=False),
            sa.Column("prompt_tokens", sa.BigInteger, nullable=False),
            sa.Column("completion_tokens", sa.BigInteger, nullable=False),
            sa.Column("priced_calls", sa.BigInteger, nullable=False),
            sa.Column("cost", sa.Float, nullable=False),
            sa.Column("errors", sa.BigInteger, nullable=False),
            sa.Column("throttled", sa.BigInteger, nullable=False),
            *(sa.Column(column, sa.BigInteger, nullable=False) for column in LATENCY_COLUMNS),
            sqlite_with_rowid=False,
        )
    backfill_rollups(op.get_bind())


def downgrade() -> None:
    op.drop_table("usage_rollups_daily")
    op.drop_table("usage_rollups")
    op.drop_table("usage_batches")
    with op.batch_alter_table("deployments") as table:
        table.drop_column("sku")
    with op.batch_alter_table("usage_records") as table:
        table.drop_column("cost")
    op.drop_table("prices")
