"""Job priorities: what a person asked for is claimed before background work.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN, never batch mode: a batch copies the table on SQLite, and dropping
    # the old one with foreign keys on deletes every job_event row (ON DELETE CASCADE).
    op.add_column(
        "job", sa.Column("priority", sa.Integer(), nullable=False, server_default=sa.text("0"))
    )
    op.create_index("ix_job_priority_created_at", "job", ["priority", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_job_priority_created_at", "job")
    op.execute("ALTER TABLE job DROP COLUMN priority")  # no table copy (SQLite 3.35+)
