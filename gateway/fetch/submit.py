"""Submitting a fetch: the request bound to its PACS (FetchTarget), the Idempotency-Key
honoured, and the job queued once while it is active (dedupe key); and the refusals.

Refusals are FetchRefused: one sentence free of patient data saying what to change (a retry
of the same request cannot help). An Idempotency-Key is scoped by API key id; reusing it with
a different request is refused, with the same request returns the first job, even finished.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa

import jobs
from gateway.core.models import idempotency_key
from gateway.core.settings import Settings
from gateway.fetch.job import FETCH_KIND
from gateway.fetch.request import FetchRequest, FetchTarget

# The job id of an Idempotency-Key claimed by a request whose job is being queued.
PENDING = ""


class FetchRefused(Exception):
    """A fetch the gateway will not queue; the message is one sentence, free of patient data,
    saying what to change (a retry of the same request cannot help)."""


class UnknownPacs(FetchRefused, LookupError):
    """The request names a PACS that is not configured."""


class IdempotencyConflict(FetchRefused):
    """The Idempotency-Key was used before with a different request."""


class PatientNotResolvable(FetchRefused):
    """The request names an R4 patient, but no patient matching is configured."""


class FetchSubmitter:
    """Queues fetch jobs for the Gateway (and so for the API, the pages and Flynotes commands).

    `matching_configured`: whether fetches by R4 patient id can run here; `notify`: wakes the
    job workers when a new job is queued."""

    def __init__(
        self,
        settings: Settings,
        engine: sa.Engine,
        job_store: jobs.JobStore,
        *,
        matching_configured: bool,
        notify: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.jobs = job_store
        self.matching_configured = matching_configured
        self.notify = notify

    def submit(
        self,
        request: FetchRequest,
        *,
        idempotency: str | None = None,
        api_key_id: str = "",
        key_name: str | None = None,
        priority: int = jobs.INTERACTIVE,
    ) -> tuple[jobs.Job, bool]:
        """Queue a fetch, or return the job already doing it (at `priority`: jobs.BACKGROUND
        for work nobody waits for).

        Raises UnknownPacs, IdempotencyConflict, PatientNotResolvable."""
        target = self._target(request)
        if request.r4_patient_id and not self.matching_configured:
            raise PatientNotResolvable(
                "Fetching by R4 patient id needs patient matching, which is not set up here; "
                "give the PACS patient id instead."
            )
        claimed = False
        if idempotency:
            claimed, earlier = self._claim(idempotency, api_key_id, request)
            if earlier is not None:
                return earlier, False
        try:
            job, created = self.jobs.submit(
                FETCH_KIND,
                target.to_params(),
                dedupe_key=target.dedupe_key(),
                submitted_by=key_name,
                priority=priority,
            )
        except BaseException:
            if claimed:
                self._release(idempotency or "", api_key_id)
            raise
        if idempotency:
            self._remember(idempotency, api_key_id, job.id)
        if created:
            self.notify()
        return job, created

    def _target(self, request: FetchRequest) -> FetchTarget:
        try:
            return FetchTarget.resolve(self.settings, request)
        except LookupError as exc:
            raise UnknownPacs(str(exc)) from None

    def _claim(
        self, key: str, api_key_id: str, request: FetchRequest
    ) -> tuple[bool, jobs.Job | None]:
        """Take the key for this request before any job exists, so two requests racing with
        one key cannot both queue a job: the primary key lets one insert win. Returns
        (claimed, the job an earlier request with the key made).

        Raises IdempotencyConflict when the key is held for a different request. A request
        equal to the one holding a key whose job is not written yet goes on: the job's dedupe
        key then makes it the same job."""
        insert = idempotency_key.insert().values(
            key=key,
            api_key_id=api_key_id,
            request_hash=request.fingerprint(),
            job_id=PENDING,
            created_at=datetime.now(UTC),
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(insert)
            return True, None
        except sa.exc.IntegrityError:
            pass
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(idempotency_key).where(
                    idempotency_key.c.key == key, idempotency_key.c.api_key_id == api_key_id
                )
            ).first()
        if row is None:  # the holder gave it up (its submit failed): take it now
            return self._claim(key, api_key_id, request)
        if row.request_hash != request.fingerprint():
            raise IdempotencyConflict(
                f"The Idempotency-Key {key!r} was already used for a different request."
            )
        if row.job_id == PENDING:
            return False, None
        return False, self.jobs.get(row.job_id)

    def _remember(self, key: str, api_key_id: str, job_id: str) -> None:
        """Write the job to a key still pending (whoever claimed it: same request, same job)."""
        with self.engine.begin() as conn:
            conn.execute(
                idempotency_key.update()
                .where(
                    idempotency_key.c.key == key,
                    idempotency_key.c.api_key_id == api_key_id,
                    idempotency_key.c.job_id == PENDING,
                )
                .values(job_id=job_id)
            )

    def _release(self, key: str, api_key_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                idempotency_key.delete().where(
                    idempotency_key.c.key == key,
                    idempotency_key.c.api_key_id == api_key_id,
                    idempotency_key.c.job_id == PENDING,
                )
            )
