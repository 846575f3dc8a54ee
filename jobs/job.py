"""Read-only snapshots of jobs and their events, as JobStore hands them out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from jobs.models import JobEventRecord, JobRecord
from jobs.states import ACTIVE_STATES, JobState


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    state: JobState
    params: dict[str, Any]
    dedupe_key: str | None
    checkpoint: dict[str, Any]
    message: str
    progress: dict[str, Any]
    attempts: int
    next_attempt_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    cancel_requested: bool
    error: str | None
    error_transient: bool | None
    version: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    priority: int = 0  # jobs.INTERACTIVE, jobs.BACKGROUND: lower is claimed first

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def etag(self) -> str:
        # The version alone suffices: the id is already in the URL the ETag belongs to.
        return f'"{self.version}"'

    @classmethod
    def from_record(cls, r: JobRecord | Row[Any]) -> Job:
        return cls(
            id=r.id,
            kind=r.kind,
            state=JobState(r.state),
            params=r.params,
            dedupe_key=r.dedupe_key,
            checkpoint=r.checkpoint,
            message=r.message,
            progress=r.progress,
            attempts=r.attempts,
            next_attempt_at=r.next_attempt_at,
            lease_owner=r.lease_owner,
            lease_expires_at=r.lease_expires_at,
            cancel_requested=r.cancel_requested,
            error=r.error,
            error_transient=r.error_transient,
            version=r.version,
            created_at=r.created_at,
            updated_at=r.updated_at,
            started_at=r.started_at,
            finished_at=r.finished_at,
            priority=r.priority,
        )


@dataclass(frozen=True)
class JobEvent:
    id: int
    job_id: str
    at: datetime
    state: JobState
    message: str
    error: str | None

    @classmethod
    def from_record(cls, r: JobEventRecord) -> JobEvent:
        return cls(
            id=r.id,
            job_id=r.job_id,
            at=r.at,
            state=JobState(r.state),
            message=r.message,
            error=r.error,
        )
