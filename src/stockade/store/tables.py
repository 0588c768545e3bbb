"""The relational schema, as SQLAlchemy Core tables (no ORM: rows are read into dataclasses)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# One row per setting of the resource; "revision" increases on every management change so that
# replicas notice and reload their caches.
resource_meta = sa.Table(
    "resource_meta",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("backend", sa.String(64), nullable=False),
    sa.Column("capacity", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    # The content filter policy's name; NULL is the built-in default policy.
    sa.Column("content_filter", sa.String(64), nullable=True),
    # Zero data retention: the deployment refuses files and batches, which keep bodies at rest.
    sa.Column("zero_data_retention", sa.Boolean, nullable=False, server_default=sa.false()),
    # Tokens its unfinished batches may hold (Azure's enqueued-token quota); NULL: the setting's.
    sa.Column("batch_token_quota", sa.BigInteger, nullable=True),
    # Azure's sku name: "Standard" (billed per token) or "ProvisionedManaged" (billed per hour).
    sa.Column("sku", sa.String(32), nullable=False, server_default="Standard"),
)

# Prices per model, with dated changes: a record is priced by the row in effect when it was made.
prices = sa.Table(
    "prices",
    metadata,
    sa.Column("model", sa.String(128), primary_key=True),
    sa.Column("effective_from", sa.Float, primary_key=True),
    sa.Column("input_per_million", sa.Float, nullable=False),
    sa.Column("output_per_million", sa.Float, nullable=False),
    sa.Column("batch_discount", sa.Float, nullable=False),  # the share taken off for batch lines
    sa.Column("hourly_rate", sa.Float, nullable=True),  # per provisioned unit (PTU) and hour
    sa.Column("created_at", sa.Float, nullable=False),
)

# Content filter policies (Azure's RAI policies); the built-in "default" has no row. The policy's
# rules are one JSON document: they are read whole, into memory, on every re-read of the store.
content_filters = sa.Table(
    "content_filters",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("config", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

blocklists = sa.Table(
    "blocklists",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

blocklist_items = sa.Table(
    "blocklist_items",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("blocklist", sa.String(64), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),  # "exact" or "regex"
    sa.Column("pattern", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# The user's own GGUF files (`stockade models add`), deployable as local chat models. In the
# store, not the settings, so that every HTTP worker and replica sees an added model at its next
# re-read of the store, and it survives restarts.
model_files = sa.Table(
    "model_files",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("architecture", sa.String(64), nullable=True),
    sa.Column("context_tokens", sa.Integer, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # "admin" (key1/key2) or "application"
    sa.Column("role", sa.String(64), nullable=False),
    sa.Column("deployment", sa.String(64), nullable=True),  # scope; NULL = whole resource
    sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("hint", sa.String(8), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float, nullable=True),
    sa.Column("tokens_per_minute", sa.Integer, nullable=True),
    sa.Column("requests_per_minute", sa.Integer, nullable=True),
)

# Quota per model, in capacity units (1 = 1,000 TPM), that its deployments share. A model without
# a row has the configured default.
model_quotas = sa.Table(
    "model_quotas",
    metadata,
    sa.Column("model", sa.String(128), primary_key=True),
    sa.Column("capacity", sa.Integer, nullable=False),
)

# Identities of the built-in token service: managed identities (their secret is the
# X-IDENTITY-HEADER value) and service principals (their secret is the client secret).
identities = sa.Table(
    "identities",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),  # "managed" or "service-principal"
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("client_id", sa.String(36), nullable=False, unique=True),
    sa.Column("object_id", sa.String(36), nullable=False, unique=True),
    sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("hint", sa.String(8), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("secret_created_at", sa.Float, nullable=False),
)

# Roles given to a token's principal (tenant_id + object_id) or to an application key, at the
# whole resource (deployment NULL) or one deployment.
role_assignments = sa.Table(
    "role_assignments",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("role", sa.String(64), nullable=False),
    sa.Column("deployment", sa.String(64), nullable=True),
    sa.Column("tenant_id", sa.String(64), nullable=True),
    sa.Column("object_id", sa.String(64), nullable=True),
    sa.Column("key_id", sa.String(32), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

# The token service's keys: the newest signs, the one before it is still published so that
# tokens it signed stay valid until they expire; older keys are deleted.
signing_keys = sa.Table(
    "signing_keys",
    metadata,
    sa.Column("kid", sa.String(64), primary_key=True),
    sa.Column("private_key", sa.Text, nullable=False),  # PKCS#8 PEM, encrypted
    sa.Column("public_jwk", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("retired_at", sa.Float, nullable=True),
)

# Management actions: who, what, when, from where, and the outcome. No request bodies.
audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Float, nullable=False, index=True),
    sa.Column("actor_id", sa.String(128), nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(256), nullable=True),
    sa.Column("status", sa.Integer, nullable=False),
)

# Metadata of every call. Bodies are never stored.
usage_records = sa.Table(
    "usage_records",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Float, nullable=False, index=True),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("operation", sa.String(64), nullable=False),
    sa.Column("deployment", sa.String(64), nullable=True, index=True),
    sa.Column("model", sa.String(128), nullable=True),
    sa.Column("key_id", sa.String(64), nullable=True),  # an API key's id or a token's object id
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("prompt_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("completion_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("latency_ms", sa.Float, nullable=False),
    # Content filter decisions as "policy/direction/category/action", comma-separated: no text.
    sa.Column("content_filter", sa.Text, nullable=True),
    sa.Column("batch_id", sa.String(64), nullable=True),  # a batch line's call, priced as batch
    sa.Column("cost", sa.Float, nullable=True),  # in billing.currency; NULL: its model has no price
)

# Usage per hour (and per UTC day), deployment, caller, model and operation, kept in step with
# usage_records (in the same transaction) so that summaries read a few rows per hour or day instead
# of every call. NULL group values are stored as '' so that the primary key can be the upsert's
# conflict target. Latency is counted in buckets (store/usage.py LATENCY_BOUNDS_MS), from which
# percentiles are estimated.
LATENCY_BUCKETS = 19


def _rollup_table(name: str, period: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column(period, sa.BigInteger, primary_key=True),  # its start, seconds since the epoch (UTC)
        sa.Column("deployment", sa.String(64), primary_key=True),
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("model", sa.String(128), primary_key=True),
        sa.Column("operation", sa.String(64), primary_key=True),
        sa.Column("calls", sa.BigInteger, nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger, nullable=False),
        sa.Column("completion_tokens", sa.BigInteger, nullable=False),
        sa.Column("priced_calls", sa.BigInteger, nullable=False),  # calls whose cost is known
        sa.Column("cost", sa.Float, nullable=False),  # theirs, summed
        sa.Column("errors", sa.BigInteger, nullable=False),  # status >= 400 but 429
        sa.Column("throttled", sa.BigInteger, nullable=False),  # 429s
        *(sa.Column(f"latency_{i:02d}", sa.BigInteger, nullable=False) for i in range(LATENCY_BUCKETS)),
        sqlite_with_rowid=False,  # stored in key order: a range of hours is read in one sweep
    )


usage_rollups = _rollup_table("usage_rollups", "hour")
usage_rollups_daily = _rollup_table("usage_rollups_daily", "day")

# The usage batches written, by id, in the same transaction as their records: a batch replayed
# from the spool after an outage, which may have been written before the outage was noticed, is
# written once.
usage_batches = sa.Table(
    "usage_batches",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("written_at", sa.Float, nullable=False),
)

# Routine conversations. The state is the engine's position (steps, not text); the trace records
# what each turn did, never what anyone wrote. Message text has its own table, written only when
# the data policy keeps it.
conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("routine", sa.String(64), nullable=False),
    sa.Column("routine_version", sa.String(16), nullable=False),
    sa.Column("deployment", sa.String(64), nullable=False),
    sa.Column("embeddings_deployment", sa.String(64), nullable=False),
    sa.Column("case_id", sa.String(32), nullable=False),
    sa.Column("principal", sa.String(128), nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("turn", sa.Integer, nullable=False),  # bumped by every turn: concurrent turns conflict
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

conversation_events = sa.Table(
    "conversation_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("conversation_id", sa.String(32), nullable=False, index=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("turn", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("step", sa.String(16), nullable=True),
    sa.Column("detail", sa.Text, nullable=False),  # JSON, without message text
)

conversation_messages = sa.Table(
    "conversation_messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("conversation_id", sa.String(32), nullable=False, index=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("turn", sa.Integer, nullable=False, server_default="0"),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("content", sa.Text, nullable=False),
)

# A support case per conversation, closed by the routine's case_resolution or by a hand-off.
cases = sa.Table(
    "cases",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("conversation_id", sa.String(32), nullable=False),
    sa.Column("routine", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # open, resolved or handed_off
    sa.Column("opened_at", sa.Float, nullable=False, index=True),
    sa.Column("closed_at", sa.Float, nullable=True),
    sa.Column("reason", sa.String(64), nullable=True),
    # Opened by a scripted evaluation (`stockade routines eval`): left out of case lists by default.
    sa.Column("evaluation", sa.Boolean, nullable=False, server_default=sa.false()),
)

# Files (`/openai/files`): their metadata here, their contents in file_chunks, sealed (encrypted
# with a key from configuration: stockade.batch.sealing). A batch input file's summary (its
# lines, url, deployment and reserved tokens) is worked out once, when it is uploaded.
files = sa.Table(
    "files",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("purpose", sa.String(32), nullable=False),
    sa.Column("filename", sa.Text, nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=True, index=True),
    sa.Column("status", sa.String(16), nullable=False),  # "processed" or "error"
    sa.Column("status_details", sa.Text, nullable=True),
    sa.Column("created_by", sa.String(64), nullable=True),  # the uploader's key or object id
    sa.Column("lines", sa.Integer, nullable=True),
    sa.Column("url", sa.String(64), nullable=True),
    sa.Column("deployment", sa.String(64), nullable=True),
    sa.Column("reserved_tokens", sa.BigInteger, nullable=True),
)

file_chunks = sa.Table(
    "file_chunks",
    metadata,
    sa.Column("file_id", sa.String(64), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

# Batch jobs (`/openai/batches`). Progress lives in batch_lines, one row per input line, which
# replicas claim (FOR UPDATE SKIP LOCKED on PostgreSQL) under a lease: a line whose lease runs
# out (its worker died) is claimed again, and only the holder of a line's current claim can
# write its result, so every line has exactly one.
batches = sa.Table(
    "batches",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("input_file_id", sa.String(64), nullable=False),
    sa.Column("endpoint", sa.String(64), nullable=False),
    sa.Column("deployment", sa.String(64), nullable=False, index=True),
    sa.Column("completion_window", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
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
    sa.Column("errors", sa.Text, nullable=True),  # JSON: [{code, message, param, line}]
    sa.Column("metadata", sa.Text, nullable=True),  # JSON: {str: str}
    sa.Column("output_expires_after", sa.Integer, nullable=True),  # seconds
    sa.Column("api_version", sa.String(32), nullable=True),  # how its lines' errors are spelled
    sa.Column("created_by", sa.String(64), nullable=False),  # key id or token object id
    sa.Column("created_by_tenant", sa.String(64), nullable=True),  # a token principal's tenant
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("reserved_tokens", sa.BigInteger, nullable=False),  # counted against the quota
)

batch_lines = sa.Table(
    "batch_lines",
    metadata,
    sa.Column("batch_id", sa.String(64), primary_key=True),
    sa.Column("line", sa.Integer, primary_key=True),  # 0-based position in the input file
    sa.Column("custom_id", sa.Text, nullable=False),
    sa.Column("request", sa.LargeBinary, nullable=False),  # sealed JSON body
    # pending, running, completed, failed, expired, cancelled
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("claim", sa.String(32), nullable=True),
    sa.Column("lease_until", sa.Float, nullable=True),
    sa.Column("result", sa.LargeBinary, nullable=True),  # sealed output or error line
    sa.Index("ix_batch_lines_state", "batch_id", "state"),
)

# Budgets: what a key, a deployment or the whole resource may spend in a day or a month, in
# billing.currency. Thresholds are shares of the amount, as JSON (e.g. [0.5, 0.8, 1.0]).
budgets = sa.Table(
    "budgets",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("scope", sa.String(16), nullable=False),  # key, deployment or resource
    sa.Column("target", sa.String(64), nullable=True),  # the key's or deployment's name
    sa.Column("period", sa.String(8), nullable=False),  # day or month, in UTC
    sa.Column("amount", sa.Float, nullable=False),
    sa.Column("thresholds", sa.Text, nullable=False),
    sa.Column("hard", sa.Boolean, nullable=False),  # refuse calls that would pass the amount
    sa.Column("webhook", sa.Text, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# The thresholds fired, one row per budget, period and threshold: the replica whose insert wins
# sends the webhook, so each fires once however many replicas see it crossed.
budget_alerts = sa.Table(
    "budget_alerts",
    metadata,
    sa.Column("budget", sa.String(64), primary_key=True),
    sa.Column("period_start", sa.Float, primary_key=True),
    sa.Column("threshold", sa.Float, primary_key=True),
    sa.Column("spent", sa.Float, nullable=False),
    sa.Column("fired_at", sa.Float, nullable=False),
)

# Stored responses (the Responses API's `store`): the response object and its input items, sealed
# together as JSON, kept until expires_at (responses.retention_days after creation). The chain a
# previous_response_id starts is walked through previous_response_id.
responses = sa.Table(
    "responses",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("deployment", sa.String(64), nullable=False),
    sa.Column("previous_response_id", sa.String(64), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
    sa.Column("data", sa.LargeBinary, nullable=False),  # sealed {"response", "input"}
)
