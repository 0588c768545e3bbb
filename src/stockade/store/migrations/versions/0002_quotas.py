"""Model quotas, and per-key rate limits.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_quotas",
        sa.Column("model", sa.String(128), primary_key=True),
        sa.Column("capacity", sa.Integer, nullable=False),
    )
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("tokens_per_minute", sa.Integer, nullable=True))
        batch.add_column(sa.Column("requests_per_minute", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("requests_per_minute")
        batch.drop_column("tokens_per_minute")
    op.drop_table("model_quotas")
