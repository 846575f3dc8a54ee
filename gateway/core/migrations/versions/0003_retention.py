"""Retention: when each study was last used, staff's "keep" and prefetch pins, and a record
of the studies removed.

Revision ID: g0003
Revises: g0002
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "g0003"
down_revision = "g0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN, never batch mode: a batch copies the table on SQLite, and dropping
    # the old one with foreign keys on deletes every instance row (ON DELETE CASCADE).
    op.add_column("study", sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "study", sa.Column("keep", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column("study", sa.Column("pinned_until", sa.DateTime(timezone=True), nullable=True))
    # A study indexed before this version was last used when it was fetched, as far as
    # anyone knows. The column stays nullable in the schema (NOT NULL would need the table
    # copy above); the index always writes it.
    op.execute("UPDATE study SET last_used_at = fetched_at")
    op.create_index("ix_study_last_used_at", "study", ["last_used_at"])
    op.create_table(
        "removed_study",
        sa.Column("study_uid", sa.String(64), primary_key=True),
        sa.Column("pacs_name", sa.String(64), nullable=False),
        sa.Column("pacs_patient_id", sa.String(64), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("instance_count", sa.Integer(), nullable=False),
    )
    op.create_index("ix_removed_study_removed_at", "removed_study", ["removed_at"])


def downgrade() -> None:
    op.drop_index("ix_removed_study_removed_at", "removed_study")
    op.drop_table("removed_study")
    op.drop_index("ix_study_last_used_at", "study")
    for column in ("pinned_until", "keep", "last_used_at"):
        # ALTER TABLE ... DROP COLUMN on both (SQLite 3.35 and later): no table copy.
        op.execute(f"ALTER TABLE study DROP COLUMN {column}")
