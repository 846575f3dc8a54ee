"""ORM models of the job tables, in their own MetaData so the gateway's tables stay apart.

Only the migrations and JobStore use these; everyone else sees the frozen `Job` snapshots.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from jobs.states import ACTIVE_STATES, JobState

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# JSONB on PostgreSQL: it has an equality operator (json has none), which report() needs to
# bump the version only when progress or checkpoint really changed.
JSONDict = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite has no timezone type, so values are stored as naive UTC text in SQLAlchemy's fixed
    format (which also makes them compare correctly as strings in SQL)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: jobs stores timezone-aware UTC only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = metadata


STATE_VALUES = ", ".join(f"'{s.value}'" for s in JobState)
ACTIVE_VALUES = ", ".join(f"'{s.value}'" for s in sorted(ACTIVE_STATES))
# Literal SQL (not a bound expression) so the same predicate text lands in the migration.
ACTIVE_PREDICATE = f"state IN ({ACTIVE_VALUES})"


class JobRecord(Base):
    __tablename__ = "job"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict[str, Any]] = mapped_column(JSONDict)
    dedupe_key: Mapped[str | None] = mapped_column(String(255))
    checkpoint: Mapped[dict[str, Any]] = mapped_column(JSONDict)
    message: Mapped[str] = mapped_column(Text)
    progress: Mapped[dict[str, Any]] = mapped_column(JSONDict)
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_requested: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)
    error_transient: Mapped[bool | None] = mapped_column(Boolean)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Lower first (jobs.INTERACTIVE before jobs.BACKGROUND), then oldest first.
    priority: Mapped[int] = mapped_column(Integer, server_default=text("0"))

    __table_args__ = (
        CheckConstraint(f"state IN ({STATE_VALUES})", name="state"),
        # Two processes submitting the same kind+key race on this index, not on a SELECT.
        Index(
            "uq_job_active_dedupe",
            "kind",
            "dedupe_key",
            unique=True,
            postgresql_where=text(ACTIVE_PREDICATE),
            sqlite_where=text(ACTIVE_PREDICATE),
        ),
        Index("ix_job_state_created_at", "state", "created_at"),
        Index("ix_job_created_at", "created_at"),
        Index("ix_job_priority_created_at", "priority", "created_at"),
    )


class JobEventRecord(Base):
    __tablename__ = "job_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
