"""Prices per model with dated changes; each usage record's cost; each deployment's sku
(standard or provisioned); the usage batches already written, so that a batch replayed from the
spool after an outage is written once.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

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


def downgrade() -> None:
    op.drop_table("usage_batches")
    with op.batch_alter_table("deployments") as table:
        table.drop_column("sku")
    with op.batch_alter_table("usage_records") as table:
        table.drop_column("cost")
    op.drop_table("prices")
