"""Conversation messages carry their turn, so that a conversation reads as of one stored turn.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Messages stored before this revision count as turn 0: shown with any turn of theirs.
    op.add_column(
        "conversation_messages",
        sa.Column("turn", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("conversation_messages") as batch:
        batch.drop_column("turn")
