"""The gateway's own tables: API keys, idempotency keys, and the index of what was fetched.

They live in the same database as the job tables, with their own Alembic history
(`gateway_alembic_version`).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

api_key = sa.Table(
    "api_key",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    # sha256 of the secret part; the secret itself is shown once and never stored.
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
)

idempotency_key = sa.Table(
    "idempotency_key",
    metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("api_key_id", sa.String(16), primary_key=True),
    # Hash of the request body, so the same key with a different request is refused.
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("job_id", sa.String(36), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

study = sa.Table(
    "study",
    metadata,
    sa.Column("study_uid", sa.String(64), primary_key=True),
    sa.Column("pacs_name", sa.String(64), nullable=False),
    sa.Column("pacs_patient_id", sa.String(64), nullable=False, index=True),
    sa.Column("study_date", sa.Date(), nullable=True),
    sa.Column("description", sa.String(255), nullable=False),
    sa.Column("modalities", sa.String(64), nullable=False),
    sa.Column("instance_count", sa.Integer(), nullable=False),
    sa.Column("bytes", sa.BigInteger(), nullable=False),
    sa.Column("job_id", sa.String(36), nullable=True),
    sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
)

instance = sa.Table(
    "instance",
    metadata,
    sa.Column("sop_instance_uid", sa.String(64), primary_key=True),
    sa.Column(
        "study_uid",
        sa.String(64),
        sa.ForeignKey("study.study_uid", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("series_uid", sa.String(64), nullable=False),
    sa.Column("sop_class_uid", sa.String(64), nullable=False),
    sa.Column("instance_number", sa.Integer(), nullable=True),
    sa.Column("size", sa.BigInteger(), nullable=False),
    # Relative to the store root, so the store can move.
    sa.Column("path", sa.String(400), nullable=False),
)
