"""API keys, idempotency keys, and the index of fetched studies and instances.

Revision ID: g0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "g0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_key",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "idempotency_key",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("api_key_id", sa.String(16), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "study",
        sa.Column("study_uid", sa.String(64), primary_key=True),
        sa.Column("pacs_name", sa.String(64), nullable=False),
        sa.Column("pacs_patient_id", sa.String(64), nullable=False),
        sa.Column("study_date", sa.Date(), nullable=True),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("modalities", sa.String(64), nullable=False),
        sa.Column("instance_count", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("job_id", sa.String(36), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_study_pacs_patient_id", "study", ["pacs_patient_id"])
    op.create_table(
        "instance",
        sa.Column("sop_instance_uid", sa.String(64), primary_key=True),
        sa.Column(
            "study_uid",
            sa.String(64),
            sa.ForeignKey("study.study_uid", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("series_uid", sa.String(64), nullable=False),
        sa.Column("sop_class_uid", sa.String(64), nullable=False),
        sa.Column("instance_number", sa.Integer(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("path", sa.String(400), nullable=False),
    )
    op.create_index("ix_instance_study_uid", "instance", ["study_uid"])


def downgrade() -> None:
    op.drop_table("instance")
    op.drop_table("study")
    op.drop_table("idempotency_key")
    op.drop_table("api_key")
