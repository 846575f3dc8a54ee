"""The fetch job: find a patient's studies on the PACS and bring every image home.

Steps are kept in the job's checkpoint (the list of studies and which are done), so a job
that was interrupted resumes with the first study not yet complete, and within a study only
the instances not yet in the store are requested again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

import jobs
from gateway.dicom_node import DicomNode
from gateway.fetch_request import FetchRequest
from gateway.settings import Settings
from gateway.study_index import StudyIndex
from pacs.errors import PacsError, PacsUnreachable, RetrieveCancelled
from pacs.models import PacsPatient, Peer, Study, StudyQuery
from pacs.query import OnForeign, find_studies
from pacs.retrieve import FetchResult, Progress

if TYPE_CHECKING:
    from gateway.fetch_matching import FetchMatching

FETCH_KIND = "fetch"


class PatientResolver(Protocol):
    """Turns an R4 patient id into the PatientIDs to query on one PACS (the matching module)."""

    def pacs_patient_ids(self, r4_patient_id: str, pacs_name: str) -> list[str]: ...


class FetchJob:
    def __init__(
        self,
        settings: Settings,
        node: DicomNode,
        index: StudyIndex,
        resolver: PatientResolver | None = None,
    ) -> None:
        self.settings = settings
        self.node = node
        self.index = index
        self.resolver = resolver
        # Set by the Gateway when R4 is configured: fetches by R4 patient id then go through
        # the matcher and the review queue (gateway.fetch_matching) instead of `resolver`.
        self.matching: FetchMatching | None = None

    def run(self, ctx: jobs.JobContext) -> None:
        params = dict(ctx.params)
        pacs_name = params.pop("pacs")
        request = FetchRequest.model_validate(params)
        try:
            peer = self.settings.peer(pacs_name)
        except LookupError as exc:
            raise jobs.PermanentError(str(exc)) from None
        try:
            checkpoint = ctx.checkpoint
            plan = checkpoint.get("studies")
            in_review = int(checkpoint.get("in_review", 0))
            dismissed = int(checkpoint.get("dismissed", 0))
            if plan is None or checkpoint.get("replan"):
                # "replan": the job ended waiting for review and was retried, so staff may
                # have decided since; studies already fetched stay done.
                ctx.report(f"Looking for studies on {peer.label}", force=True)
                studies, in_review, dismissed = self._plan(ctx, peer, pacs_name, request)
                done = {e["study_uid"]: e for e in plan or [] if e["done"]}
                plan = [done.get(s.study_uid) or _entry(s) for s in studies]
                ctx.save_checkpoint(
                    {"studies": plan, "in_review": in_review, "dismissed": dismissed}
                )
            if in_review:
                ctx.report(studies_in_review=in_review)
            self._fetch_all(ctx, peer, pacs_name, plan, in_review, dismissed)
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

    def _plan(
        self, ctx: jobs.JobContext, peer: Peer, pacs_name: str, request: FetchRequest
    ) -> tuple[list[Study], int, int]:
        """The studies to fetch, how many of the patient's studies wait for review, and how
        many staff dismissed earlier."""
        foreign: set[str] = set()

        def left_out(study: Study) -> None:
            foreign.add(study.study_uid)

        if request.r4_patient_id and self.matching is not None:
            plan = self.matching.plan(
                peer, self.settings.ae_title, pacs_name, request, ctx.id, on_foreign=left_out
            )
            result = plan.fetch, plan.in_review, plan.dismissed
        else:
            result = self._find(peer, pacs_name, request, left_out), 0, 0
        if foreign:
            ctx.note(
                f"The PACS answered {_count(len(foreign), 'study', 'studies')} of another "
                "patient than the one asked for: left out, not fetched."
            )
        return result

    def _find(
        self, peer: Peer, pacs_name: str, request: FetchRequest, on_foreign: OnForeign
    ) -> list[Study]:
        if request.pacs_patient_id:
            patient_ids = [request.pacs_patient_id]
        elif self.resolver is not None and request.r4_patient_id:
            patient_ids = self.resolver.pacs_patient_ids(request.r4_patient_id, pacs_name)
        else:
            raise jobs.PermanentError("Fetching by R4 patient id needs patient matching.")
        found: dict[str, Study] = {}
        for patient_id in patient_ids:
            query = StudyQuery(
                patient_id=patient_id,
                date_from=request.date_from,
                date_to=request.date_to,
                modalities=tuple(request.modalities),
            )
            for study in find_studies(peer, self.settings.ae_title, query, on_foreign=on_foreign):
                if not request.study_uids or study.study_uid in request.study_uids:
                    found.setdefault(study.study_uid, study)
        return sorted(found.values(), key=lambda s: (s.study_date or date.min, s.study_uid))

    def _fetch_all(
        self,
        ctx: jobs.JobContext,
        peer: Peer,
        pacs_name: str,
        plan: list[dict[str, Any]],
        in_review: int = 0,
        dismissed: int = 0,
    ) -> None:
        if not plan and in_review:
            # Nothing could be fetched without a person's decision: say so by the job's state.
            # A retry once staff have decided looks again rather than resuming this plan.
            ctx.save_checkpoint({"studies": plan, "in_review": in_review, "replan": True})
            ctx.request_review(f"No study was fetched. {review_sentence(in_review)}")
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
        for number, entry in enumerate(plan, start=1):
            if entry["done"]:
                continue
            ctx.raise_if_cancelled()
            result = self.node.retriever.fetch_study(
                peer,
                entry["study_uid"],
                progress=_reporter(ctx, plan, number),
                cancelled=lambda: ctx.cancelled,
                max_requests=self.settings.fetch_max_requests,
                expected=entry["expected"],
                notice=ctx.note,
                modalities=entry["modalities"],
            )
            self._index(pacs_name, entry, result, ctx.id)
            entry.update(done=True, expected=result.expected, received=result.expected)
            ctx.save_checkpoint({"studies": plan, "in_review": in_review})
            _report(ctx, plan, f"Fetched study {number} of {len(plan)}", force=True)
        images = sum(e["expected"] or 0 for e in plan)
        summary = (
            f"Fetched {_count(len(plan), 'study', 'studies')}, {_count(images, 'image', 'images')}."
        )
        ctx.set_summary(f"{summary} {review_sentence(in_review)}" if in_review else summary)

    def _index(
        self, pacs_name: str, entry: dict[str, Any], result: FetchResult, job_id: str
    ) -> None:
        store = self.node.store
        sizes = {
            i.sop_instance_uid: store.path_for(i.study_uid, i.series_uid, i.sop_instance_uid)
            .stat()
            .st_size
            for i in result.instances
        }
        study = Study(
            study_uid=entry["study_uid"],
            patient=PacsPatient(patient_id=entry["pacs_patient_id"]),
            study_date=date.fromisoformat(entry["date"]) if entry["date"] else None,
            description=entry["description"],
            modalities=tuple(entry["modalities"]),
        )
        self.index.record_study(pacs_name, study, result.instances, sizes, job_id)


def _entry(study: Study) -> dict[str, Any]:
    return {
        "study_uid": study.study_uid,
        "pacs_patient_id": study.patient.patient_id,
        "date": study.study_date.isoformat() if study.study_date else None,
        "description": study.description,
        "modalities": list(study.modalities),
        "expected": study.number_of_instances,
        "received": 0,
        "bytes": 0,
        "done": False,
    }


def _reporter(
    ctx: jobs.JobContext, plan: list[dict[str, Any]], number: int
) -> Callable[[Progress], None]:
    entry = plan[number - 1]

    def report(progress: Progress) -> None:
        entry["expected"] = progress.expected
        entry["received"] = progress.received
        entry["bytes"] = progress.bytes_received
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
    plan: list[dict[str, Any]],
    message: str,
    *,
    failed: int = 0,
    force: bool = False,
) -> None:
    numbers: dict[str, int] = {
        "studies_total": len(plan),
        "studies_done": sum(1 for e in plan if e["done"]),
        "instances_expected": sum(e["expected"] or 0 for e in plan),
        "instances_received": sum(e["received"] for e in plan),
        "instances_failed": failed,
        "bytes": sum(e.get("bytes", 0) for e in plan),
    }
    ctx.report(message, force=force, **numbers)


def review_sentence(count: int) -> str:
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
