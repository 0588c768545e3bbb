"""Cases opened by scripted evaluations are marked, so that case lists can leave them out.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Cases opened before this revision were all counted as real ones, and stay so.
    op.add_column(
        "cases",
        sa.Column("evaluation", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("evaluation")
