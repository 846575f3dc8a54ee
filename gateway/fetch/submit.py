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
    ) -> tuple[jobs.Job, bool]:
        """Queue a fetch, or return the job already doing it.

        Raises UnknownPacs, IdempotencyConflict, PatientNotResolvable."""
        target = self._target(request)
        if request.r4_patient_id and not self.matching_configured:
            raise PatientNotResolvable(
                "Fetching by R4 patient id needs patient matching, which is not set up here; "
                "give the PACS patient id instead."
            )
        if idempotency:
            earlier = self._idempotent_job(idempotency, api_key_id, request)
            if earlier is not None:
                return earlier, False
        job, created = self.jobs.submit(
            FETCH_KIND, target.to_params(), dedupe_key=target.dedupe_key(), submitted_by=key_name
        )
        if idempotency:
            self._remember(idempotency, api_key_id, request, job.id)
        if created:
            self.notify()
        return job, created

    def _target(self, request: FetchRequest) -> FetchTarget:
        try:
            return FetchTarget.resolve(self.settings, request)
        except LookupError as exc:
            raise UnknownPacs(str(exc)) from None

    def _idempotent_job(self, key: str, api_key_id: str, request: FetchRequest) -> jobs.Job | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(idempotency_key).where(
                    idempotency_key.c.key == key, idempotency_key.c.api_key_id == api_key_id
                )
            ).first()
        if row is None:
            return None
        if row.request_hash != request.fingerprint():
            raise IdempotencyConflict(
                "This Idempotency-Key was already used for a different request."
            )
        return self.jobs.get(row.job_id)

    def _remember(self, key: str, api_key_id: str, request: FetchRequest, job_id: str) -> None:
        insert = idempotency_key.insert().values(
            key=key,
            api_key_id=api_key_id,
            request_hash=request.fingerprint(),
            job_id=job_id,
            created_at=datetime.now(UTC),
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(insert)
        except sa.exc.IntegrityError:
            # A concurrent request with the same key won; its job is the answer next time.
            pass
