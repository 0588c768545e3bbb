"""Content filter policies, custom blocklists, each deployment's policy, and filter decisions
in usage records.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "content_filters",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "blocklists",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "blocklist_items",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("blocklist", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("pattern", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_blocklist_items_blocklist", "blocklist_items", ["blocklist"])
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("content_filter", sa.String(64), nullable=True))
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(sa.Column("content_filter", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("content_filter")
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("content_filter")
    op.drop_index("ix_blocklist_items_blocklist", "blocklist_items")
    op.drop_table("blocklist_items")
    op.drop_table("blocklists")
    op.drop_table("content_filters")
