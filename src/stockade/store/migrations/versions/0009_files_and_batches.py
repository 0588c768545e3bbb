"""Files and batch jobs; each deployment's zero data retention and enqueued-token quota; batch
calls marked in usage records.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_details", sa.Text, nullable=True),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.Column("lines", sa.Integer, nullable=True),
        sa.Column("url", sa.String(64), nullable=True),
        sa.Column("deployment", sa.String(64), nullable=True),
        sa.Column("reserved_tokens", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_files_expires_at", "files", ["expires_at"])
    op.create_table(
        "file_chunks",
        sa.Column("file_id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "batches",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("input_file_id", sa.String(64), nullable=False),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("deployment", sa.String(64), nullable=False),
        sa.Column("completion_window", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("in_progress_at", sa.Float, nullable=True),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("finalizing_at", sa.Float, nullable=True),
        sa.Column("completed_at", sa.Float, nullable=True),
        sa.Column("failed_at", sa.Float, nullable=True),
        sa.Column("expired_at", sa.Float, nullable=True),
        sa.Column("cancelling_at", sa.Float, nullable=True),
        sa.Column("cancelled_at", sa.Float, nullable=True),
        sa.Column("output_file_id", sa.String(64), nullable=True),
        sa.Column("error_file_id", sa.String(64), nullable=True),
        sa.Column("errors", sa.Text, nullable=True),
        sa.Column("metadata", sa.Text, nullable=True),
        sa.Column("output_expires_after", sa.Integer, nullable=True),
        sa.Column("api_version", sa.String(32), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_by_tenant", sa.String(64), nullable=True),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("reserved_tokens", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_batches_deployment", "batches", ["deployment"])
    op.create_index("ix_batches_status", "batches", ["status"])
    op.create_table(
        "batch_lines",
        sa.Column("batch_id", sa.String(64), primary_key=True),
        sa.Column("line", sa.Integer, primary_key=True),
        sa.Column("custom_id", sa.Text, nullable=False),
        sa.Column("request", sa.LargeBinary, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("claim", sa.String(32), nullable=True),
        sa.Column("lease_until", sa.Float, nullable=True),
        sa.Column("result", sa.LargeBinary, nullable=True),
    )
    op.create_index("ix_batch_lines_state", "batch_lines", ["batch_id", "state"])
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(
            sa.Column("zero_data_retention", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("batch_token_quota", sa.BigInteger, nullable=True))
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(sa.Column("batch_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("batch_id")
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("batch_token_quota")
        batch.drop_column("zero_data_retention")
    op.drop_index("ix_batch_lines_state", "batch_lines")
    op.drop_table("batch_lines")
    op.drop_index("ix_batches_status", "batches")
    op.drop_index("ix_batches_deployment", "batches")
    op.drop_table("batches")
    op.drop_table("file_chunks")
    op.drop_index("ix_files_expires_at", "files")
    op.drop_table("files")
