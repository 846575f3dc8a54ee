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
    # Retention (gateway.storage): the last fetch, view, preview or DICOMweb read; what is
    # least recently used goes first.
    # Nullable only in the schema (see migration g0003); always written.
    sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True, index=True),
    # Staff marked it to be kept whatever the limits say.
    sa.Column("keep", sa.Boolean(), nullable=False, server_default=sa.false()),
    # Kept until then (a prefetch for an appointment that has not passed yet).
    sa.Column("pinned_until", sa.DateTime(timezone=True), nullable=True),
)

# Studies taken out of the store, by retention or by staff: what the API and pages say of a
# study that is gone ("removed on 7 Dec 2026 to keep 5 GB free; fetch it again"). One row per
# study (the latest removal); a fetch that brings the study back deletes it.
removed_study = sa.Table(
    "removed_study",
    metadata,
    sa.Column("study_uid", sa.String(64), primary_key=True),
    sa.Column("pacs_name", sa.String(64), nullable=False),
    sa.Column("pacs_patient_id", sa.String(64), nullable=False),
    sa.Column("removed_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("rule", sa.String(32), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("bytes", sa.BigInteger(), nullable=False),
    sa.Column("instance_count", sa.Integer(), nullable=False),
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

# -- review queue, patient links, audit (gateway.review) ----------------------------------

review_item = sa.Table(
    "review_item",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("origin", sa.String(16), nullable=False),
    sa.Column("pacs_name", sa.String(64), nullable=True),
    sa.Column("study_uid", sa.String(64), nullable=False, index=True),
    # "<pacs_name>|<study_uid>" while the item is open, NULL once closed: the unique index
    # makes adding the same open study twice impossible (NULLs never collide, in SQLite and
    # PostgreSQL alike), without a partial index.
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
    sa.Index("ix_review_item_state_id", "state", "id"),
)

patient_link = sa.Table(
    "patient_link",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("pacs_patient_id", sa.String(64), nullable=False),
    # IssuerOfPatientID; "" when the PACS sends none. Part of the key: an id is only an
    # identity within its issuer.
    sa.Column("issuer", sa.String(64), nullable=False),
    sa.Column("r4_patient_id", sa.Integer(), nullable=False, index=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("review_item_id", sa.Integer(), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.UniqueConstraint("pacs_patient_id", "issuer", name="uq_patient_link_pacs_id"),
)

audit_event = sa.Table(
    "audit_event",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("subject", sa.String(64), nullable=False, index=True),
    sa.Column("before", sa.JSON(), nullable=True),
    sa.Column("after", sa.JSON(), nullable=True),
)
