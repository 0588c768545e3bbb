"""The user's own GGUF model files (`stockade models add`).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_files",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("architecture", sa.String(64), nullable=True),
        sa.Column("context_tokens", sa.Integer, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("model_files")
