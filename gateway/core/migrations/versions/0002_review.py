"""The review queue, remembered patient links and the audit trail of staff actions.

Revision ID: g0002
Revises: g0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "g0002"
down_revision = "g0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_item",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("pacs_name", sa.String(64), nullable=True),
        sa.Column("study_uid", sa.String(64), nullable=False),
        sa.Column("open_key", sa.String(140), nullable=True),
        sa.Column("study_date", sa.Date(), nullable=True),
        sa.Column("study_description", sa.String(255), nullable=False),
        sa.Column("modalities", sa.JSON(), nullable=False),
        sa.Column("instance_count", sa.Integer(), nullable=True),
        sa.Column("pacs_patient", sa.JSON(), nullable=False),
        sa.Column("why", sa.JSON(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("job_id", sa.String(36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(128), nullable=True),
        sa.Column("resolved_r4_patient_id", sa.Integer(), nullable=True),
        sa.Column("dismiss_reason", sa.String(500), nullable=True),
        sa.Column("follow_up_job_id", sa.String(36), nullable=True),
        sa.UniqueConstraint("open_key", name="uq_review_item_open_key"),
    )
    op.create_index("ix_review_item_study_uid", "review_item", ["study_uid"])
    op.create_index("ix_review_item_state_id", "review_item", ["state", "id"])
    op.create_table(
        "patient_link",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("pacs_patient_id", sa.String(64), nullable=False),
        sa.Column("issuer", sa.String(64), nullable=False),
        sa.Column("r4_patient_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("review_item_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.UniqueConstraint("pacs_patient_id", "issuer", name="uq_patient_link_pacs_id"),
    )
    op.create_index("ix_patient_link_r4_patient_id", "patient_link", ["r4_patient_id"])
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
    )
    op.create_index("ix_audit_event_subject", "audit_event", ["subject"])


def downgrade() -> None:
    op.drop_table("audit_event")
    op.drop_table("patient_link")
    op.drop_table("review_item")
