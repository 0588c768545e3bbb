"""Budgets per key, deployment or resource, and the alert thresholds each has fired per period.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "budgets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("target", sa.String(64), nullable=True),
        sa.Column("period", sa.String(8), nullable=False),
        sa.Column("amount", sa.Float, nullable=False),
        sa.Column("thresholds", sa.Text, nullable=False),
        sa.Column("hard", sa.Boolean, nullable=False),
        sa.Column("webhook", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "budget_alerts",
        sa.Column("budget", sa.String(64), primary_key=True),
        sa.Column("period_start", sa.Float, primary_key=True),
        sa.Column("threshold", sa.Float, primary_key=True),
        sa.Column("spent", sa.Float, nullable=False),
        sa.Column("fired_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("budget_alerts")
    op.drop_table("budgets")
