"""JobStore: the only way to read or change jobs.

Every change runs in one short write transaction. Changes made on behalf of a worker
(heartbeat, report, succeed, ...) only apply while that worker still holds the job's lease,
so a worker whose lease expired cannot overwrite what the job's new owner does.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import sqlalchemy as sa
from sqlalchemy import Engine, and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from jobs.db import WRITE_OPTION, is_prepared
from jobs.errors import IllegalTransition, JobNotFound, LeaseLost
from jobs.job import Job, JobEvent
from jobs.models import JobEventRecord, JobRecord, UTCDateTime
from jobs.states import (
    ACTIVE_STATES,
    FINISHED_STATES,
    INTERACTIVE,
    Action,
    JobState,
    check_transition,
)

Clock = Callable[[], datetime]

log = logging.getLogger("jobs")

# A dedupe INSERT that loses a race retries this many times; more means something else is wrong.
_SUBMIT_TRIES = 3


def utcnow() -> datetime:
    return datetime.now(UTC)


_JOB = JobRecord.__table__
_GET_JOB = sa.select(_JOB).where(_JOB.c.id == sa.bindparam("job_id"))


class JobStore:
    """Jobs in a database; safe to share between threads and between processes.

    `clock` is injectable so tests can expire leases and reach retry times without waiting.
    Lease and retry times come from the callers' clocks, so hosts sharing one PostgreSQL
    database need synchronised clocks (NTP): skew shortens or lengthens leases."""

    def __init__(self, engine: Engine, *, clock: Clock = utcnow) -> None:
        if not is_prepared(engine):
            raise ValueError("make SQLite engines for the job store with jobs.create_engine()")
        self._clock = clock
        self._engine = engine
        self._read = sessionmaker(engine, expire_on_commit=False)
        self._write = sessionmaker(
            engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        )

    def now(self) -> datetime:
        """The store's clock: the time leases and retry times are measured against."""
        return self._clock()

    # -- reading -----------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        # Core, not the ORM: pollers read one row thousands of times a second, and building
        # an ORM instance costs about three times the query itself.
        with self._engine.connect() as conn:
            row = conn.execute(_GET_JOB, {"job_id": job_id}).first()
        if row is None:
            raise JobNotFound(job_id)
        return Job.from_record(row)

    def list(
        self,
        *,
        kind: str | None = None,
        state: JobState | str | Iterable[JobState | str] | None = None,
        dedupe_key_prefix: str | None = None,
        params_match: Mapping[str, str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[Job]:
        """Jobs matching every filter given, newest first.

        `params_match` keeps jobs whose params have each given top-level key equal to the
        given string (JSON_EXTRACT on SQLite, ->> on PostgreSQL). These filters scan the
        rows the other filters leave: no index covers params."""
        query = select(JobRecord)
        if kind is not None:
            query = query.where(JobRecord.kind == kind)
        if state is not None:
            # A plain str too ("queued" from a query string), not iterated character-wise.
            states = [state] if isinstance(state, str) else builtins.list(state)
            query = query.where(JobRecord.state.in_(states))
        if dedupe_key_prefix is not None:
            query = query.where(JobRecord.dedupe_key.startswith(dedupe_key_prefix, autoescape=True))
        for key, value in (params_match or {}).items():
            query = query.where(JobRecord.params[key].as_string() == value)
        query = query.order_by(JobRecord.created_at.desc(), JobRecord.id.desc())
        with self._read() as s:
            recs = s.scalars(query.limit(limit).offset(offset))
            return [Job.from_record(r) for r in recs]

    def prune(self, finished_before: datetime, *, batch: int = 500) -> int:
        """Delete finished jobs that finished before `finished_before`, with their events;
        the number deleted. In batches of `batch`, each its own short transaction, so a long
        history never holds the write lock for long."""
        finished = [s.value for s in FINISHED_STATES]
        deleted = 0
        while True:
            with self._writing() as s:
                ids = s.scalars(
                    select(JobRecord.id)
                    .where(
                        JobRecord.state.in_(finished),
                        # created_at first: the (state, created_at) index narrows the scan.
                        JobRecord.created_at < finished_before,
                        JobRecord.finished_at < finished_before,
                    )
                    .limit(batch)
                ).all()
                if not ids:
                    return deleted
                s.execute(sa.delete(JobEventRecord).where(JobEventRecord.job_id.in_(ids)))
                s.execute(sa.delete(JobRecord).where(JobRecord.id.in_(ids)))
            deleted += len(ids)

    def counts(self) -> dict[JobState, int]:
        """How many jobs are in each state (every state present, zero included)."""
        query = select(JobRecord.state, sa.func.count()).group_by(JobRecord.state)
        with self._read() as s:
            found = {JobState(state): int(n) for state, n in s.execute(query)}
        return {state: found.get(state, 0) for state in JobState}

    def finished_runs(
        self, kind: str, limit: int = 10_000
    ) -> builtins.list[tuple[str, float, dict[str, Any]]]:
        """(state, seconds from start to finish, progress) of the newest finished jobs of
        `kind` that ran, newest first: what duration and size histograms are built from."""
        query = (
            select(JobRecord.state, JobRecord.started_at, JobRecord.finished_at, JobRecord.progress)
            .where(
                JobRecord.kind == kind,
                JobRecord.state.in_([state.value for state in FINISHED_STATES]),
                JobRecord.started_at.is_not(None),
                JobRecord.finished_at.is_not(None),
            )
            .order_by(JobRecord.finished_at.desc())
            .limit(limit)
        )
        with self._read() as s:
            return [
                (state, max(0.0, (finished - started).total_seconds()), dict(progress or {}))
                for state, started, finished, progress in s.execute(query)
            ]

    def events(self, job_id: str) -> builtins.list[JobEvent]:
        """The job's history, oldest first."""
        with self._read() as s:
            recs = s.scalars(
                select(JobEventRecord)
                .where(JobEventRecord.job_id == job_id)
                .order_by(JobEventRecord.id)
            ).all()
            if not recs and s.get(JobRecord, job_id) is None:
                raise JobNotFound(job_id)
            return [JobEvent.from_record(r) for r in recs]

    def cancel_requests(self, job_ids: Collection[str]) -> set[str]:
        """Those of `job_ids` whose cancellation was requested (one query for a whole pool)."""
        if not job_ids:
            return set()
        with self._read() as s:
            return set(
                s.scalars(
                    select(JobRecord.id).where(
                        JobRecord.id.in_(job_ids), JobRecord.cancel_requested.is_(True)
                    )
                )
            )

    # -- submitting and user actions ---------------------------------------------------

    def submit(
        self,
        kind: str,
        params: dict[str, Any],
        *,
        dedupe_key: str | None = None,
        submitted_by: str | None = None,
        priority: int = INTERACTIVE,
    ) -> tuple[Job, bool]:
        """Queue a job; with a dedupe_key, return the active job of the same kind+key instead
        if there is one. The bool says whether a new job was created. `submitted_by` (a key
        or client name, never patient data) goes into the log line only. An active job
        found by its key and asked for at a more urgent `priority` takes that priority: a
        person asking for what a prefetch has queued does not wait behind the prefetch."""
        tries_left = _SUBMIT_TRIES
        while True:
            try:
                job, created = self._submit_once(kind, params, dedupe_key, priority)
                if created:
                    _lifecycle("submitted", job, key_name=submitted_by or "-")
                return job, created
            except IntegrityError:
                # Another process inserted the same kind+key between our SELECT and INSERT:
                # the partial unique index refused ours, and the next try finds theirs.
                tries_left -= 1
                if dedupe_key is None or not tries_left:
                    raise

    def _submit_once(
        self, kind: str, params: dict[str, Any], dedupe_key: str | None, priority: int
    ) -> tuple[Job, bool]:
        with self._writing() as s:
            if dedupe_key is not None:
                existing = self._active_with_key(s, kind, dedupe_key)
                if existing is not None:
                    if priority < existing.priority:
                        existing.priority = priority
                    return Job.from_record(existing), False
            now = self._clock()
            rec = JobRecord(
                id=str(uuid4()),
                kind=kind,
                state=JobState.QUEUED,
                params=params,
                dedupe_key=dedupe_key,
                checkpoint={},
                message="Queued",
                progress={},
                attempts=0,
                cancel_requested=False,
                version=1,
                created_at=now,
                updated_at=now,
                priority=priority,
            )
            s.add(rec)
            s.flush()  # the job row must exist before its event row (foreign key)
            self._event(s, rec, now, "Queued")
            return Job.from_record(rec), True

    def request_cancel(self, job_id: str) -> Job:
        """Cancel a job that is not running at once; flag a running one for its worker, whose
        handler sees JobContext.cancelled. Cancelling a cancelled job changes nothing."""
        with self._writing() as s:
            rec = self._locked(s, job_id)
            now = self._clock()
            if rec.state == JobState.RUNNING and not self._lease_expired(rec, now):
                if not rec.cancel_requested:
                    rec.cancel_requested = True
                    self._touch(rec, now)
                    self._event(s, rec, now, "Cancel requested")
            elif rec.state != JobState.CANCELLED:
                self._move(s, rec, Action.CANCEL, now, "Cancelled")
            return Job.from_record(rec)

    def retry(self, job_id: str) -> Job:
        """Queue a failed, cancelled or reviewed job again, with a fresh attempt count.

        The checkpoint is kept, so the job resumes rather than starting over."""
        try:
            with self._writing() as s:
                rec = self._locked(s, job_id)
                now = self._clock()
                self._move(s, rec, Action.RETRY, now, "Queued again (retry requested)")
                rec.attempts = 0
                rec.started_at = None
                rec.next_attempt_at = None
                rec.cancel_requested = False
                rec.error = None
                rec.error_transient = None
                return Job.from_record(rec)
        except IntegrityError:
            # Queuing it again would make two active jobs with one dedupe key.
            job = self.get(job_id)
            with self._read() as s:
                other = self._active_with_key(s, job.kind, job.dedupe_key or "")
            raise IllegalTransition(
                f"cannot retry job {job_id}: job {other.id if other else '?'} with the same"
                f" dedupe key is active",
                job_id=job_id,
                source=job.state,
                target=JobState.QUEUED,
            ) from None

    # -- workers -----------------------------------------------------------------------

    def claim(
        self,
        worker_id: str,
        kinds: Collection[str],
        lease_seconds: float,
        *,
        max_priority: int | None = None,
    ) -> Job | None:
        """Take the most urgent, then oldest, runnable job of one of `kinds`: queued, due for
        retry, or running under an expired lease (its worker died); with `max_priority`, only
        jobs at least that urgent. None when there is nothing to do."""
        if not kinds:
            return None
        now = self._clock()
        runnable = or_(
            JobRecord.state == JobState.QUEUED,
            and_(JobRecord.state == JobState.WAITING_RETRY, JobRecord.next_attempt_at <= now),
            and_(JobRecord.state == JobState.RUNNING, JobRecord.lease_expires_at < now),
        )
        with self._writing() as s:
            # PostgreSQL: rows other claimers hold are skipped, not waited for. SQLite has no
            # SKIP LOCKED (FOR UPDATE renders as nothing); its BEGIN IMMEDIATE already
            # serialises claimers, and the conditional UPDATE below keeps the claim atomic.
            candidate = s.execute(
                select(JobRecord.id, JobRecord.state, JobRecord.lease_owner, JobRecord.attempts)
                .where(
                    JobRecord.kind.in_(kinds),
                    runnable,
                    JobRecord.priority <= max_priority if max_priority is not None else sa.true(),
                )
                .order_by(JobRecord.priority, JobRecord.created_at, JobRecord.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if candidate is None:
                return None
            attempt = candidate.attempts + 1
            rec = s.scalars(
                update(JobRecord)
                .where(JobRecord.id == candidate.id, runnable)
                .values(
                    state=JobState.RUNNING,
                    lease_owner=worker_id,
                    lease_expires_at=now + timedelta(seconds=lease_seconds),
                    attempts=attempt,
                    started_at=sa.func.coalesce(
                        JobRecord.started_at, sa.literal(now, UTCDateTime())
                    ),
                    finished_at=None,
                    next_attempt_at=None,
                    message=f"Running (attempt {attempt})" if attempt > 1 else "Running",
                    version=JobRecord.version + 1,
                    updated_at=now,
                )
                .returning(JobRecord)
                .execution_options(synchronize_session=False)
            ).one_or_none()
            if rec is None:  # taken since the SELECT: only possible without serialised writers
                return None
            if candidate.state == JobState.RUNNING:
                note = f"Lease of {candidate.lease_owner} expired; restarted by {worker_id}"
            else:
                note = f"Started by {worker_id}"
            self._event(s, rec, now, f"{note} (attempt {attempt})")
            job = Job.from_record(rec)
        _lifecycle("started", job, attempt=attempt)
        return job

    def heartbeat(self, job_id: str, worker_id: str, lease_seconds: float) -> bool:
        """Extend the lease; False if the worker no longer holds the job.

        Leaves `version` alone: a lease renewal is no news for pollers."""
        now = self._clock()
        with self._writing() as s:
            result = s.execute(
                update(JobRecord)
                .where(*self._held_by(job_id, worker_id))
                .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
                .execution_options(synchronize_session=False)
            )
            return result.rowcount == 1

    def report(
        self,
        job_id: str,
        worker_id: str,
        *,
        message: str | None = None,
        progress: dict[str, Any] | None = None,
        checkpoint: dict[str, Any] | None = None,
    ) -> bool:
        """Record what the handler is doing, in one UPDATE; False if the lease was lost.

        `version` and `updated_at` move only when a value really changed, so pollers that
        send the ETag keep getting 304 while a handler repeats itself."""
        values: dict[str, Any] = {}
        changed: builtins.list[sa.ColumnElement[bool]] = []
        if message is not None:
            values["message"] = message
            changed.append(JobRecord.message != message)
        if progress is not None:
            values["progress"] = progress
            changed.append(JobRecord.progress != progress)
        if checkpoint is not None:
            values["checkpoint"] = checkpoint
            changed.append(JobRecord.checkpoint != checkpoint)
        held = self._held_by(job_id, worker_id)
        if not values:
            with self._read() as s:
                return s.scalar(select(sa.func.count()).select_from(JobRecord).where(*held)) == 1
        any_change = or_(*changed)
        now = self._clock()
        with self._writing() as s:
            result = s.execute(
                update(JobRecord)
                .where(*held)
                .values(
                    **values,
                    version=JobRecord.version + sa.case((any_change, 1), else_=0),
                    updated_at=sa.case(
                        (any_change, sa.literal(now, UTCDateTime())), else_=JobRecord.updated_at
                    ),
                )
                .execution_options(synchronize_session=False)
            )
            return result.rowcount == 1

    def note(self, job_id: str, worker_id: str, message: str) -> bool:
        """Add an event that changes no state (something a person reading the job's history
        should know); False if the lease was lost."""
        with self._writing() as s:
            rec = s.scalars(select(JobRecord).where(*self._held_by(job_id, worker_id))).first()
            if rec is None:
                return False
            s.add(JobEventRecord(job_id=job_id, at=self._clock(), state=rec.state, message=message))
            return True

    def succeed(self, job_id: str, worker_id: str, message: str = "Done") -> Job:
        return self._finish(job_id, worker_id, Action.SUCCEED, message)

    def fail(
        self, job_id: str, worker_id: str, message: str, *, error: str, transient: bool = False
    ) -> Job:
        """Fail for good. `transient` records that the last error was one worth retrying
        (the retry policy gave up), as opposed to a permanent one."""
        return self._finish(
            job_id, worker_id, Action.FAIL, message, error=error, transient=transient
        )

    def schedule_retry(
        self, job_id: str, worker_id: str, at: datetime, message: str, error: str
    ) -> Job:
        return self._finish(
            job_id, worker_id, Action.SCHEDULE_RETRY, message, error=error, transient=True, at=at
        )

    def needs_review(self, job_id: str, worker_id: str, message: str) -> Job:
        return self._finish(job_id, worker_id, Action.NEEDS_REVIEW, message)

    def acknowledge_cancel(self, job_id: str, worker_id: str, message: str = "Cancelled") -> Job:
        """The worker stopped a job whose cancellation was requested."""
        return self._finish(job_id, worker_id, Action.CANCEL, message)

    def release(
        self, job_id: str, worker_id: str, message: str = "Interrupted by shutdown; will resume"
    ) -> Job:
        """Give a claimed job back (graceful shutdown): queued again, checkpoint kept, and the
        interrupted attempt not counted against the retry budget."""
        return self._finish(job_id, worker_id, Action.RELEASE, message)

    def _finish(
        self,
        job_id: str,
        worker_id: str,
        action: Action,
        message: str,
        *,
        error: str | None = None,
        transient: bool | None = None,
        at: datetime | None = None,
    ) -> Job:
        with self._writing() as s:
            rec = self._locked(s, job_id)
            if rec.lease_owner != worker_id or rec.state != JobState.RUNNING:
                raise LeaseLost(job_id, worker_id)
            now = self._clock()
            if error is not None:
                rec.error = error
                rec.error_transient = transient
            if action == Action.RELEASE:
                rec.attempts = max(0, rec.attempts - 1)
            self._move(s, rec, action, now, message, error=error, next_attempt_at=at)
            job = Job.from_record(rec)
        _log_outcome(action, job, error)
        return job

    # -- helpers -----------------------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        with self._write() as s, s.begin():
            yield s

    @staticmethod
    def _locked(s: Session, job_id: str) -> JobRecord:
        rec = s.get(JobRecord, job_id, with_for_update=True)
        if rec is None:
            raise JobNotFound(job_id)
        return rec

    @staticmethod
    def _held_by(job_id: str, worker_id: str) -> tuple[sa.ColumnElement[bool], ...]:
        return (
            JobRecord.id == job_id,
            JobRecord.lease_owner == worker_id,
            JobRecord.state == JobState.RUNNING,
        )

    @staticmethod
    def _lease_expired(rec: JobRecord, now: datetime) -> bool:
        return rec.lease_expires_at is None or rec.lease_expires_at < now

    @staticmethod
    def _active_with_key(s: Session, kind: str, dedupe_key: str) -> JobRecord | None:
        return s.scalars(
            select(JobRecord).where(
                JobRecord.kind == kind,
                JobRecord.dedupe_key == dedupe_key,
                JobRecord.state.in_(ACTIVE_STATES),
            )
        ).first()

    def _move(
        self,
        s: Session,
        rec: JobRecord,
        action: Action,
        now: datetime,
        message: str,
        *,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> None:
        target = check_transition(action, rec.id, JobState(rec.state))
        rec.state = target
        rec.message = message
        rec.next_attempt_at = next_attempt_at
        rec.lease_owner = None
        rec.lease_expires_at = None
        rec.finished_at = now if target in FINISHED_STATES else None
        self._touch(rec, now)
        self._event(s, rec, now, message, error=error)

    @staticmethod
    def _touch(rec: JobRecord, now: datetime) -> None:
        rec.version += 1
        rec.updated_at = now

    @staticmethod
    def _event(
        s: Session, rec: JobRecord, now: datetime, message: str, *, error: str | None = None
    ) -> None:
        s.add(JobEventRecord(job_id=rec.id, at=now, state=rec.state, message=message, error=error))


# -- lifecycle log lines -----------------------------------------------------------------------
# Ids, kinds, counts, bytes, durations and error sentences only: params may name a patient and
# are never logged. Structured fields go in `extra` (gateway.core.logs shows them as JSON keys).


def _lifecycle(event: str, job: Job, level: int = logging.INFO, **fields: Any) -> None:
    details = " ".join(f"{k}={v}" for k, v in fields.items() if k != "reason")
    text = f"job {event}: {job.kind} {job.id}" + (f" ({details})" if details else "")
    if "reason" in fields:
        text += f": {fields['reason']}"
    log.log(level, text, extra={"event": event, "job_id": job.id, "kind": job.kind, **fields})


def _log_outcome(action: Action, job: Job, error: str | None) -> None:
    if action == Action.SCHEDULE_RETRY:
        when = job.next_attempt_at.isoformat(timespec="seconds") if job.next_attempt_at else "-"
        _lifecycle("retry", job, attempt=job.attempts, next_attempt_at=when, reason=error or "-")
        return
    if action == Action.RELEASE:
        _lifecycle("released", job)
        return
    progress = job.progress or {}
    fields: dict[str, Any] = {
        "studies": progress.get("studies_done", 0),
        "instances": progress.get("instances_received", 0),
        "bytes": progress.get("bytes", 0),
    }
    if job.started_at is not None and job.finished_at is not None:
        fields["duration_s"] = round((job.finished_at - job.started_at).total_seconds(), 1)
    if action == Action.FAIL:
        # ERROR: a job that gave up is what operators want in Rollbar (no patient data here).
        _lifecycle("failed", job, logging.ERROR, **fields, reason=error or "-")
    else:  # succeeded, needs_review, cancelled
        _lifecycle(JobState(job.state).value, job, **fields)
