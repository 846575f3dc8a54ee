"""The fetch job: find a patient's studies on the PACS and bring every image home.

Steps are kept in the job's checkpoint (the list of studies and which are done), so a job
that was interrupted resumes with the first study not yet complete, and within a study only
the instances not yet in the store are requested again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import jobs
from gateway.core.dicom_node import DicomNode
from gateway.core.settings import Settings
from gateway.fetch.plan import FetchMatching, PlanEntry
from gateway.fetch.request import FetchTarget
from gateway.index.study_index import StudyIndex
from gateway.review.audit import AuditAction, AuditLog, study_subject
from gateway.storage.retention import Retention
from pacs.attributes import patient_changes
from pacs.errors import PacsError, PacsUnreachable, RetrieveCancelled
from pacs.models import Study
from pacs.query import OnForeign, find_studies
from pacs.retrieve import FetchResult, Progress
from pacs.store import changes_between

FETCH_KIND = "fetch"


class FetchJob:
    def __init__(
        self,
        settings: Settings,
        node: DicomNode,
        index: StudyIndex,
        matching: FetchMatching | None = None,
        audit: AuditLog | None = None,
        room: Retention | None = None,
    ) -> None:
        self.settings = settings
        self.node = node
        self.index = index
        self.audit = audit
        # Before each study: room made on the gateway's disk, or the job waits.
        self.room = room
        # With R4: fetches by R4 patient id go through the matcher and the review queue.
        # Without, they are refused at submit (and fail here, should one be queued anyway).
        self.matching = matching

    def run(self, ctx: jobs.JobContext) -> None:
        try:
            target = FetchTarget.from_params(self.settings, ctx.params)
        except LookupError as exc:
            raise jobs.PermanentError(str(exc)) from None
        try:
            checkpoint = ctx.checkpoint
            saved = checkpoint.get("studies")
            plan = None if saved is None else [PlanEntry.from_json(e) for e in saved]
            in_review = int(checkpoint.get("in_review", 0))
            dismissed = int(checkpoint.get("dismissed", 0))
            if plan is None or checkpoint.get("replan"):
                # "replan": the job ended waiting for review and was retried, so staff may
                # have decided since; studies already fetched stay done.
                ctx.report(f"Looking for studies on {target.peer.label}", force=True)
                studies, in_review, dismissed = self._plan(ctx, target)
                done = {e.study_uid: e for e in plan or [] if e.done}
                plan = [
                    done.get(s.study_uid) or PlanEntry.of(s, refresh=self._corrected(ctx, s))
                    for s in studies
                ]
                ctx.save_checkpoint(
                    {"studies": _json(plan), "in_review": in_review, "dismissed": dismissed}
                )
            if in_review:
                ctx.report(studies_in_review=in_review)
            self._fetch_all(ctx, target, plan, in_review, dismissed)
        except RetrieveCancelled:
            raise jobs.JobCancelled(ctx.id) from None
        except PacsError as exc:
            if not exc.transient:
                raise jobs.PermanentError(exc.message) from None
            raise jobs.TransientError(self._with_advice(ctx, exc)) from None

    def _with_advice(self, ctx: jobs.JobContext, exc: PacsError) -> str:
        """On the last attempt the pool gives up with this message: tell staff what to do
        then, since nothing will happen by itself any more (the outage drill found the
        final message said only what failed). Earlier attempts keep the bare sentence; the
        pool adds when the next try is."""
        if ctx.attempt < self.settings.retry_max_attempts:
            return exc.message
        if isinstance(exc, PacsUnreachable):
            advice = "Check that the PACS is switched on and reachable from the gateway"
        else:
            advice = "Check the PACS (or ask its provider)"
        return f"{exc.message} {advice}, then retry this job: it resumes where it stopped."

    def _plan(self, ctx: jobs.JobContext, target: FetchTarget) -> tuple[list[Study], int, int]:
        """The studies to fetch, how many of the patient's studies wait for review, and how
        many staff dismissed earlier."""
        foreign: set[str] = set()

        def left_out(study: Study) -> None:
            foreign.add(study.study_uid)

        if target.request.r4_patient_id and self.matching is not None:
            plan = self.matching.plan(target, self.settings.ae_title, ctx.id, on_foreign=left_out)
            result = plan.fetch, plan.in_review, plan.dismissed
        else:
            result = self._find(target, left_out), 0, 0
        if foreign:
            ctx.note(
                f"The PACS answered {_count(len(foreign), 'study', 'studies')} of another "
                "patient than the one asked for: left out, not fetched."
            )
        return result

    def _corrected(self, ctx: jobs.JobContext, study: Study) -> bool:
        """Whether the store holds the study under other patient attributes than the PACS
        answers now (the PACS corrected it under the same UIDs): then all of it is fetched
        again, and the PACS's copies replace the stored ones."""
        stored = self.node.store.stored_patient(study.study_uid)
        changes = patient_changes(study.patient, stored) if stored is not None else []
        if changes:
            ctx.note(
                f"The PACS now gives other patient details for a study the gateway holds "
                f"({', '.join(changes)}): fetching all of it again."
            )
        return bool(changes)

    def _find(self, target: FetchTarget, on_foreign: OnForeign) -> list[Study]:
        patient_id = target.request.pacs_patient_id
        if not patient_id:
            raise jobs.PermanentError("Fetching by R4 patient id needs patient matching.")
        query = target.query(patient_id=patient_id)
        found: dict[str, Study] = {}
        for study in find_studies(
            target.peer, self.settings.ae_title, query, on_foreign=on_foreign
        ):
            if target.wants(study.study_uid):
                found.setdefault(study.study_uid, study)
        return sorted(found.values(), key=lambda s: (s.study_date or date.min, s.study_uid))

    def _fetch_all(
        self,
        ctx: jobs.JobContext,
        target: FetchTarget,
        plan: list[PlanEntry],
        in_review: int = 0,
        dismissed: int = 0,
    ) -> None:
        if not plan and in_review:
            # Nothing could be fetched without a person's decision: say so by the job's state.
            # A retry once staff have decided looks again rather than resuming this plan.
            ctx.save_checkpoint({"studies": _json(plan), "in_review": in_review, "replan": True})
            ctx.request_review(f"No study was fetched. {awaiting_review(in_review)}")
            return
        if not plan and dismissed:
            ctx.set_summary(
                f"No study was fetched: staff earlier dismissed "
                f"{_count(dismissed, 'study', 'studies')} found for this patient; dismissed "
                "items can be reopened in the review queue."
            )
            return
        if not plan:
            ctx.set_summary("No study matches this patient and date range on the PACS.")
            return
        # When the images are all here already (a prefetch brought them), the summary says
        # since when: the earliest indexing of the plan's studies before this job's.
        earlier: list[datetime] = []
        brought = 0
        for number, entry in enumerate(plan, start=1):
            if entry.done:
                continue
            ctx.raise_if_cancelled()
            before = self.index.study(entry.study_uid)
            if before is not None:
                earlier.append(before.fetched_at)
            self._make_room(plan, entry)
            result = self.node.retriever.fetch_study(
                target.peer,
                entry.study_uid,
                progress=_reporter(ctx, plan, number),
                cancelled=lambda: ctx.cancelled,
                max_requests=self.settings.fetch_max_requests,
                expected=entry.expected,
                notice=ctx.note,
                modalities=entry.modalities,
                patient=entry.patient(),
                refresh=entry.refresh,
            )
            brought += result.received_now
            self._index(target.pacs_name, entry, result, ctx.id)
            if target.request.keep_until is not None:
                self.index.pin(entry.study_uid, _end_of(target.request.keep_until))
            self._tell_changes(ctx, result)
            entry.done = True
            entry.expected = entry.received = result.expected
            ctx.save_checkpoint({"studies": _json(plan), "in_review": in_review})
            _report(ctx, plan, f"Fetched study {number} of {len(plan)}", force=True)
        images = sum(e.expected or 0 for e in plan)
        summary = (
            f"Fetched {_count(len(plan), 'study', 'studies')}, {_count(images, 'image', 'images')}."
        )
        if not brought and earlier and len(earlier) == len(plan):
            since = min(earlier)
            since = (since if since.tzinfo else since.replace(tzinfo=UTC)).astimezone()
            summary = (
                f"Ready: {_count(len(plan), 'study', 'studies')} "
                f"({_count(images, 'image', 'images')}) already here, fetched on "
                f"{since.day} {since:%b %Y} at {since:%H:%M}."
            )
        ctx.set_summary(f"{summary} {awaiting_review(in_review)}" if in_review else summary)

    def _make_room(self, plan: list[PlanEntry], entry: PlanEntry) -> None:
        """Room for the study's estimated size, removing least recently used studies (never
        this job's); when none can be made the job waits and tries again, saying why in
        figures. A transient error: space may be freed, or a fetch finish, meanwhile."""
        if self.room is None:
            return
        needed = self.room.estimate(entry.expected, entry.bytes)
        blocked = self.room.make_room(needed, protect={e.study_uid for e in plan})
        if blocked is not None:
            raise jobs.TransientError(blocked.sentence())

    def _tell_changes(self, ctx: jobs.JobContext, result: FetchResult) -> None:
        """Say in the job's events, and audit, what the PACS's copies replaced and what was
        held back (uids and keywords only, no patient data)."""
        if result.held_back:
            ctx.note(
                f"{_count(result.held_back, 'file', 'files')} claiming this study did not come "
                "from the PACS's answer to this fetch (another sender, or another patient "
                "than the PACS's C-FIND gave): held back, never shown; see the review page."
            )
        for path, old in result.replaced:
            changes = changes_between(old, path)
            sentence = f"replaced by the PACS's copy: {', '.join(changes)} changed"
            if self.audit is not None:
                self.audit.record(
                    f"job:{ctx.id}",
                    AuditAction.STUDY_REPLACED,
                    study_subject(result.study_uid),
                    {"sop_instance_uid": path.stem, "kept_aside": old.name},
                    {"change": sentence},
                )
        if result.replaced:
            ctx.note(
                f"{_count(len(result.replaced), 'stored image', 'stored images')} differed "
                "from the PACS's copy and were replaced by it; the old copies are kept aside."
            )

    def _index(self, pacs_name: str, entry: PlanEntry, result: FetchResult, job_id: str) -> None:
        store = self.node.store
        sizes = {
            i.sop_instance_uid: store.path_for(i.study_uid, i.series_uid, i.sop_instance_uid)
            .stat()
            .st_size
            for i in result.instances
        }
        self.index.record_study(pacs_name, entry.study(), result.instances, sizes, job_id)


def _end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


def _json(plan: list[PlanEntry]) -> list[dict[str, Any]]:
    return [entry.to_json() for entry in plan]


def _reporter(
    ctx: jobs.JobContext, plan: list[PlanEntry], number: int
) -> Callable[[Progress], None]:
    entry = plan[number - 1]

    def report(progress: Progress) -> None:
        entry.expected = progress.expected
        entry.received = progress.received
        entry.bytes = progress.bytes_stored
        _report(
            ctx,
            plan,
            f"Fetching study {number} of {len(plan)}: "
            f"{progress.received} of {_count(progress.expected, 'image', 'images')}",
            failed=progress.failed or 0,
        )

    return report


def _report(
    ctx: jobs.JobContext,
    plan: list[PlanEntry],
    message: str,
    *,
    failed: int = 0,
    force: bool = False,
) -> None:
    numbers: dict[str, int] = {
        "studies_total": len(plan),
        "studies_done": sum(1 for e in plan if e.done),
        "instances_expected": sum(e.expected or 0 for e in plan),
        "instances_received": sum(e.received for e in plan),
        "instances_failed": failed,
        "bytes": sum(e.bytes for e in plan),
    }
    ctx.report(message, force=force, **numbers)


def awaiting_review(count: int) -> str:
    """How many of the patient's studies wait for staff, in words (no patient data)."""
    if count == 1:
        return (
            "1 study awaits staff review before it can be fetched: the PACS files it under a "
            "patient id not confirmed as this patient's."
        )
    return (
        f"{count} studies await staff review before they can be fetched: the PACS files them "
        "under patient ids not confirmed as this patient's."
    )


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"
