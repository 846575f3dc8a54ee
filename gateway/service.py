"""The running gateway: database, job store, DICOM node, workers, and what the API asks of them."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial

import sqlalchemy as sa

import jobs
from gateway.core.database import open_database
from gateway.core.dicom_node import DicomNode
from gateway.core.settings import Settings
from gateway.fetch.follow_up import bring_in_resolved
from gateway.fetch.job import FETCH_KIND, FetchJob
from gateway.fetch.plan import FetchMatching
from gateway.fetch.request import FetchRequest
from gateway.fetch.submit import (
    FetchRefused,
    FetchSubmitter,
    IdempotencyConflict,
    PatientNotResolvable,
    UnknownPacs,
)
from gateway.index.study_index import IndexedStudy, StudyIndex, StudyNotFound
from gateway.practice.directory import PatientDirectory
from gateway.practice.side import PracticeSide, id_rule
from gateway.prefetch.day import (
    PREFETCH_ACTOR,
    PatientDay,
    PatientState,
    Planned,
    PrefetchUnavailable,
    day_status,
    plan_day,
    prefetch_day,
    recent_studies,
)
from gateway.prefetch.schedule import PrefetchSchedule
from gateway.pushes.receiver import PushedStudies
from gateway.pushes.recovery import recover_unmatched_pushes
from gateway.review import AuditLog, PatientLinks, ReviewItem, ReviewQueue
from gateway.review import actions as review_actions
from gateway.review.access import AccessAudit
from gateway.review.audit import AuditAction, study_subject
from gateway.storage.keeper import Keeper
from gateway.storage.retention import Limits, Retention, size
from pacs.echo import echo
from pacs.errors import PacsError
from pacs.preview import PreviewCache, RenderGuard
from r4.messages import FetchStudies

# The refusals of submit_fetch, importable from here as before.
__all__ = [
    "FetchRefused",
    "Gateway",
    "IdempotencyConflict",
    "PatientNotResolvable",
    "Readiness",
    "UnknownPacs",
]

log = logging.getLogger(__name__)

# Who the audit trail names for a fetch the practice side's command queue asked for.
PRACTICE_ACTOR = "sqs:fetch-studies"
# Readiness C-ECHOes each PACS in a thread of its own, up to this many at once.
READINESS_ECHOES = 8
# A removal's reason is kept in the audit trail, as long as a dismissal's may be.
REMOVE_REASON_MAX = review_actions.DISMISS_REASON_MAX


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str
    latency_ms: float | None = None


@dataclass(frozen=True)
class Readiness:
    checks: dict[str, Check] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks.values())


class Gateway:
    """Everything `serve` runs, built from settings. The API and pages call only this."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = open_database(settings.database_url)
        self.jobs = jobs.JobStore(self.engine)
        self.node = DicomNode(settings)
        # Previews are drawn once from the stored files; a study indexed again or removed
        # has its previews forgotten, so none outlives the files it was drawn from.
        self.previews = PreviewCache(
            settings.data_dir / "previews",
            guard=RenderGuard(
                settings.preview_max_frame_bytes,
                settings.preview_max_renders,
                settings.preview_render_wait,
            ),
        )
        self.index = StudyIndex(self.engine, self.node.store.root, self.previews.forget_study)
        # R4, Flynotes, Rollbar: each part off unless configured. With R4, fetches may name
        # an R4 patient.
        self.practice = PracticeSide(
            settings,
            submit_fetch=self._submit_for_practice,
            drain=self.drain,
            resume=self.resume,
            fetch_recent=self._fetch_recent,
        )
        # What staff decide: the review queue, remembered links (read first by the matcher),
        # and the audit trail of both.
        self.review = ReviewQueue(self.engine)
        self.links = PatientLinks(self.engine)
        self.audit = AuditLog(self.engine)
        self.access = AccessAudit(self.audit)
        # R4 patients for matching, review candidates and staff search; empty without R4.
        self.patients = PatientDirectory(
            self.practice.engine, id_rules=[id_rule(settings)], links=self.links
        )
        # Fetches by R4 patient: linked and id-rule ids, checked by the matcher.
        matching = (
            FetchMatching(
                self.patients,
                self.review,
                self.links,
                id_rule(settings),
                by_demographics=settings.match_by_demographics,
            )
            if self.patients.configured
            else None
        )
        # What the store keeps: limits, least recently used first, never what is in use.
        self.retention = Retention(
            Limits.of(settings),
            self.index,
            self.node.store,
            self.audit,
            active_studies=self._active_studies,
        )
        self.keeper = Keeper(
            self.retention, self.jobs, self.engine, timedelta(days=settings.keep_jobs_days)
        )
        self.fetch_job = FetchJob(
            settings, self.node, self.index, matching, self.audit, room=self.retention
        )
        self.submitter = FetchSubmitter(
            settings,
            self.engine,
            self.jobs,
            matching_configured=matching is not None,
            notify=self._notify_workers,
        )
        # Studies a PACS sends unasked: matched once their association ends.
        self.pushes = PushedStudies(
            settings, self.node.store, self.index, self.patients, self.review, self.audit
        )
        self.pushes.listen(self.node.scp)
        # Prefetch by itself in `serve` ([prefetch] enabled): started with the rest.
        self.prefetch_schedule = (
            PrefetchSchedule(settings.prefetch, self.prefetch)
            if settings.prefetch.enabled
            else None
        )
        self.pool: jobs.WorkerPool | None = None
        self._workers = settings.workers

    def start(self, *, workers: int | None = None) -> None:
        self.practice.start_reporting()  # first: a start-up failure below reaches Rollbar
        self.keeper.start()  # its first pass at once: the store is checked at start
        self.pushes.start()
        # Pushes a crash kept from being matched: found before the SCP takes new ones.
        recover_unmatched_pushes(self.pushes, self.jobs)
        self.node.start()
        self._workers = self.settings.workers if workers is None else workers
        self.resume()
        self.practice.start()
        self._start_prefetch()

    def start_for_one_fetch(self) -> None:
        """What the CLI's `fetch` needs of `start`: receiving, and one worker. Not the practice
        side: its command queue belongs to `serve`."""
        self.pushes.start()
        recover_unmatched_pushes(self.pushes, self.jobs)
        self.node.start()
        self._workers = 1
        self.resume()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking commands, finish or release claimed jobs, then stop receiving."""
        if self.prefetch_schedule is not None:
            self.prefetch_schedule.stop(timeout)
        self.practice.stop(timeout)
        self.drain(timeout)
        self.node.stop()
        self.pushes.stop(timeout)
        self.keeper.stop(timeout)

    def drain(self, timeout: float = 10.0) -> None:
        """Stop claiming jobs and return once none runs here: running jobs stop at their next
        checkpoint (or finish) and are released, to be resumed by the next start."""
        if self.pool is not None:
            self.pool.stop(timeout)
            self.pool = None

    def _start_prefetch(self) -> None:
        if self.prefetch_schedule is None:
            return
        try:
            self.plan_prefetch(date.today())
        except PrefetchUnavailable as exc:
            log.warning("[prefetch] is enabled but cannot run: %s", exc)
            return
        self.prefetch_schedule.start()

    def _active_studies(self) -> set[str]:
        """The studies active fetch jobs plan to fetch or are fetching: never removed."""
        uids: set[str] = set()
        for job in self.jobs.list(kind=FETCH_KIND, state=jobs.ACTIVE_STATES, limit=10_000):
            uids.update(str(e.get("study_uid", "")) for e in job.checkpoint.get("studies") or ())
            uids.update(str(u) for u in job.params.get("study_uids") or ())
        uids.discard("")
        return uids

    def _notify_workers(self) -> None:
        if self.pool is not None:
            self.pool.notify()

    def resume(self) -> None:
        """Start the job workers (again, after a drain whose update failed)."""
        if self.pool is None and self._workers > 0:
            self.pool = jobs.WorkerPool(
                self.jobs,
                {FETCH_KIND: self.fetch_job.run},
                workers=self._workers,
                lease_seconds=self.settings.lease_seconds,
                retry_policy=self.settings.retry_policy(),
            )
            self.pool.start()

    def submit_fetch(
        self,
        request: FetchRequest,
        *,
        idempotency: str | None = None,
        api_key_id: str = "",
        key_name: str | None = None,
        priority: int = jobs.INTERACTIVE,
    ) -> tuple[jobs.Job, bool]:
        """Queue a fetch, or return the job already doing it (see gateway.fetch.submit).

        Raises UnknownPacs, IdempotencyConflict, PatientNotResolvable (all FetchRefused)."""
        return self.submitter.submit(
            request,
            idempotency=idempotency,
            api_key_id=api_key_id,
            key_name=key_name,
            priority=priority,
        )

    def _submit_for_practice(
        self, command: FetchStudies, *, api_key_id: str = ""
    ) -> tuple[jobs.Job, bool]:
        """A fetch-studies command from the practice side (SQS), its request id as the
        idempotency key: audited as that command."""
        request = FetchRequest(
            r4_patient_id=str(command.patient_id),
            date_from=command.date_from,
            date_to=command.date_to,
            modalities=list(command.modalities),
        )
        job, created = self.submit_fetch(
            request,
            idempotency=command.request_id,
            api_key_id=api_key_id,
            key_name=PRACTICE_ACTOR,
        )
        self.access.submitted(PRACTICE_ACTOR, job.id, job.params)
        return job, created

    def plan_prefetch(self, day: date) -> list[Planned]:
        """Who comes in on `day` and what a prefetch fetches for each. Raises
        PrefetchUnavailable."""
        return plan_day(self.settings, self.practice.engine, day)

    def prefetch(
        self, day: date, *, starting_by: datetime | None = None
    ) -> list[tuple[Planned, jobs.Job]]:
        """Queue `day`'s prefetch as background fetches, audited as the prefetch's; each
        patient with its job. With `starting_by` (the rolling pass): only appointments
        starting by then whose patient has no prefetch for the day yet.

        Raises PrefetchUnavailable, FetchRefused."""
        planned = self.plan_prefetch(day)
        if starting_by is not None:
            planned = [
                d.planned
                for d in day_status(self.jobs, planned)
                if d.state is PatientState.WAITING and d.planned.starts_at <= starting_by
            ]
        queued = prefetch_day(self.submit_fetch, planned)
        for _, job in queued:
            self.access.submitted(PREFETCH_ACTOR, job.id, job.params)
        return queued

    def prefetch_status(self, day: date) -> list[PatientDay]:
        """Each patient of `day`'s appointments and where their prefetch stands. Raises
        PrefetchUnavailable."""
        return day_status(self.jobs, self.plan_prefetch(day))

    def _fetch_recent(self, r4_patient_id: int) -> jobs.Job:
        """A patient's screen opens in Flynotes (`patient-sync`): their recent studies, at a
        person's priority, as the prefetch rules choose them."""
        request = recent_studies(self.settings, r4_patient_id, date.today())
        job, _ = self.submit_fetch(request, key_name=PRACTICE_ACTOR)
        self.access.submitted(PRACTICE_ACTOR, job.id, job.params)
        return job

    def resolve_review(self, item_id: int, r4_patient_id: int, actor: str) -> ReviewItem:
        """Staff decided whose study this is: remember the link and close the item, and the
        other open items of the same PACS patient (`resolved_siblings`), audited; then bring
        their studies in: attach pushed files, fetch the rest in one job of exactly those.

        Raises ReviewNotFound, ReviewClosed, LinkConflict, UnknownR4Patient, R4Unavailable."""
        review_actions.check_open(self.review, item_id)  # a closed item: 409 before all else
        review_actions.check_r4_patient(self.patients, r4_patient_id)
        item = review_actions.resolve(
            self.review, self.links, self.audit, item_id, r4_patient_id, actor
        )
        # attach_pushed_study is looked up now: tests replace it on the instance.
        return bring_in_resolved(
            partial(self.submit_fetch, key_name=f"{actor} (review)"),
            self.attach_pushed_study,
            self.review,
            item,
        )

    def dismiss_review(self, item_id: int, reason: str, actor: str) -> ReviewItem:
        """Close a review item without a link; the reason is kept and audited.

        Raises ValueError (reason empty or over 500 characters), ReviewNotFound, ReviewClosed."""
        return review_actions.dismiss(self.review, self.audit, item_id, reason, actor)

    def reopen_review(self, item_id: int, actor: str) -> ReviewItem:
        """Take a dismissal back: the item is open again (audited as review.reopen).

        Raises ReviewNotFound, ReviewNotDismissed, ReviewAlreadyQueued."""
        return review_actions.reopen(self.review, self.audit, item_id, actor)

    def remove_study(self, study_uid: str, reason: str, actor: str) -> IndexedStudy:
        """Take a wrongly filed study out of the gateway: index rows, files and previews
        gone, audited as study.removed with the reason. A later fetch can bring it back
        (from the PACS, checked as any fetch is).

        Raises ValueError (reason empty or over 500 characters), StudyNotFound."""
        reason = reason.strip()
        if not 1 <= len(reason) <= REMOVE_REASON_MAX:
            raise ValueError(f"A removal needs a reason of 1 to {REMOVE_REASON_MAX} characters.")
        removed = self.index.remove(
            study_uid, rule="staff", reason=f"at {actor}'s request: {reason}"
        )
        if removed is None:
            raise StudyNotFound()
        files = self.node.store.remove_study(study_uid)
        self.audit.record(
            actor,
            AuditAction.STUDY_REMOVED,
            study_subject(study_uid),
            {
                "pacs": removed.pacs_name,
                "pacs_patient_id": removed.pacs_patient_id,
                "instances": removed.instance_count,
                "job_id": removed.job_id,
            },
            {"reason": reason, "files_removed": files},
        )
        return removed

    def keep_study(self, study_uid: str, keep: bool, actor: str) -> IndexedStudy:
        """Mark a study to be kept whatever the storage limits say (or no longer), audited.

        Raises StudyNotFound."""
        if not self.index.set_keep(study_uid, keep):
            raise StudyNotFound(self.index.removal(study_uid))
        self.audit.record(
            actor, AuditAction.STUDY_KEEP, study_subject(study_uid), None, {"keep": keep}
        )
        found = self.index.study(study_uid)
        if found is None:
            raise StudyNotFound(self.index.removal(study_uid))
        return found

    def attach_pushed_study(self, item: ReviewItem) -> IndexedStudy | None:
        """Index a resolved push item's study from the store (None: no file of it is left)."""
        return self.pushes.attach(item)

    def readiness(self) -> Readiness:
        """Database, storage, then each PACS in settings order. The C-ECHOes run side by
        side (at most READINESS_ECHOES at once): PACS that are down cost about one timeout
        together, not one each, on /ready and the dashboard."""
        checks = {"database": self._check_database(), "storage": self._check_storage()}
        names = [entry.name for entry in self.settings.pacs]
        if names:
            with ThreadPoolExecutor(
                max_workers=min(len(names), READINESS_ECHOES), thread_name_prefix="ready-echo"
            ) as pool:
                for name, check in zip(names, pool.map(self._check_pacs, names), strict=True):
                    checks[f"pacs:{name}"] = check
        for name, (ok, detail) in self.practice.readiness().items():  # r4, flynotes, sqs
            checks[name] = Check(ok, detail)
        return Readiness(checks)

    def _check_database(self) -> Check:
        started = time.perf_counter()
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            return Check(False, f"database error: {type(exc).__name__}")
        return Check(True, "reachable", (time.perf_counter() - started) * 1000)

    def _check_storage(self) -> Check:
        probe = self.node.store.incoming / ".ready-probe"
        try:
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            return Check(False, f"the study store is not writable: {exc.strerror}")
        figures = self.retention.figures()
        numbers = (
            f"{size(figures.used_bytes)} of studies, {size(figures.free_bytes)} free on its "
            f"disk (keeps {size(figures.limits.min_free_bytes)} free"
            + (
                f", holds at most {size(figures.limits.max_bytes)})"
                if figures.limits.max_bytes is not None
                else ")"
            )
        )
        if self.retention.removed_total:
            numbers += f"; {self.retention.removed_total} studies removed since start"
        if not figures.floor_kept:
            return Check(
                False,
                f"below its free-space floor: {numbers}; every study that could be removed "
                "is in use, kept or pinned. Free space on the disk.",
            )
        return Check(True, f"writable: {self.node.store.root}; {numbers}")

    def _check_pacs(self, name: str) -> Check:
        peer = self.settings.peer(name)
        try:
            seconds = echo(peer, self.settings.ae_title)
        except PacsError as exc:
            return Check(False, exc.message)
        over = "over TLS" if peer.tls is not None else "over plain TCP"
        return Check(True, f"answers C-ECHO {over}", seconds * 1000)
