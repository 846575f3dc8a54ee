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
    with op.batch_alter_table("study") as batch:
        batch.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("keep", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("pinned_until", sa.DateTime(timezone=True), nullable=True))
    # A study indexed before this version was last used when it was fetched, as far as
    # anyone knows.
    op.execute("UPDATE study SET last_used_at = fetched_at")
    with op.batch_alter_table("study") as batch:
        batch.alter_column("last_used_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.create_index("ix_study_last_used_at", ["last_used_at"])
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
    with op.batch_alter_table("study") as batch:
        batch.drop_index("ix_study_last_used_at")
        batch.drop_column("pinned_until")
        batch.drop_column("keep")
        batch.drop_column("last_used_at")
