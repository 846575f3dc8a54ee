"""Create the job and job_event tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Spelled out rather than imported from jobs.models: a migration must keep meaning what it
# meant when it was written, whatever the models say later.
JSON_DICT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
STATES = "'queued', 'running', 'waiting_retry', 'needs_review', 'succeeded', 'failed', 'cancelled'"
ACTIVE = "state IN ('queued', 'running', 'waiting_retry')"


def upgrade() -> None:
    op.create_table(
        "job",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("params", JSON_DICT, nullable=False),
        sa.Column("dedupe_key", sa.String(255), nullable=True),
        sa.Column("checkpoint", JSON_DICT, nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("progress", JSON_DICT, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(255), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_transient", sa.Boolean(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_job"),
        sa.CheckConstraint(f"state IN ({STATES})", name="ck_job_state"),
    )
    op.create_index(
        "uq_job_active_dedupe",
        "job",
        ["kind", "dedupe_key"],
        unique=True,
        postgresql_where=sa.text(ACTIVE),
        sqlite_where=sa.text(ACTIVE),
    )
    op.create_index("ix_job_state_created_at", "job", ["state", "created_at"])
    op.create_index("ix_job_created_at", "job", ["created_at"])

    op.create_table(
        "job_event",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_job_event"),
        sa.ForeignKeyConstraint(
            ["job_id"], ["job.id"], name="fk_job_event_job_id_job", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_job_event_job_id", "job_event", ["job_id"])


def downgrade() -> None:
    op.drop_table("job_event")
    op.drop_table("job")
