"""What the clinician's job page shows: a job turned into sentences, numbers and study cards.

Built for the first render and for every poll of the page's status endpoint, so the page and
its live updates never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jobs
from gateway.core.viewer_links import render_links
from gateway.service import Gateway
from gateway.web.session import PAGES
from gateway.web.when import moment_text

# Seconds the page waits between two (long) polls of the status endpoint.
POLL_GAP = 0.25
THUMBNAILS_PER_STUDY = 6


@dataclass(frozen=True)
class Thumbnail:
    series_uid: str
    thumbnail: str
    preview: str


@dataclass(frozen=True)
class StudyCard:
    study_uid: str
    date: str
    modalities: str
    description: str
    image_count: int
    thumbnails: tuple[Thumbnail, ...]
    more_series: int
    viewers: tuple[tuple[str, str], ...]
    in_store: bool
    # Why a study the gateway once held is gone ("removed on 7 Dec 2026 to keep ...").
    removed: str = ""
    keep: bool = False


@dataclass(frozen=True)
class JobView:
    id: str
    state: str
    active: bool
    version: int
    headline: str
    sentence: str
    detail: str
    show_fallback: bool
    pacs: str
    patient: str
    studies_done: int
    studies_total: int
    images_received: int
    images_expected: int
    next_try: datetime | None
    next_try_words: str
    poll_after: float
    created_at: datetime
    studies: tuple[StudyCard, ...] = field(default=())

    def status(self, html: str) -> dict[str, Any]:
        """The status endpoint's answer; `html` is the job panel rendered from this view."""
        return {
            "id": self.id,
            "state": self.state,
            "active": self.active,
            "version": self.version,
            "headline": self.headline,
            "sentence": self.sentence,
            "studies_done": self.studies_done,
            "studies_total": self.studies_total,
            "images_received": self.images_received,
            "images_expected": self.images_expected,
            "poll_after_ms": int(self.poll_after * 1000),
            "html": html,
        }


def job_view(gateway: Gateway, job: jobs.Job) -> JobView:
    progress = job.progress or {}
    pacs = str(job.params.get("pacs") or "")
    now = gateway.jobs.now()
    headline, sentence, show_fallback = _words(job, pacs, now)
    detail = job.message if job.message and job.message != sentence else ""
    studies: tuple[StudyCard, ...] = ()
    if job.state in (jobs.JobState.SUCCEEDED, jobs.JobState.NEEDS_REVIEW):
        studies = tuple(study_cards(gateway, job))
    return JobView(
        id=job.id,
        state=job.state.value,
        active=job.active,
        version=job.version,
        headline=headline,
        sentence=sentence,
        detail=detail,
        show_fallback=show_fallback,
        pacs=pacs,
        patient=patient_label(job.params),
        studies_done=int(progress.get("studies_done", 0)),
        studies_total=int(progress.get("studies_total", 0)),
        images_received=int(progress.get("instances_received", 0)),
        images_expected=int(progress.get("instances_expected", 0)),
        next_try=job.next_attempt_at,
        next_try_words=_in_words(job.next_attempt_at, now),
        poll_after=POLL_GAP,
        created_at=job.created_at,
        studies=studies,
    )


def patient_label(params: dict[str, Any]) -> str:
    if params.get("pacs_patient_id"):
        return f"PACS patient {params['pacs_patient_id']}"
    if params.get("r4_patient_id"):
        return f"R4 patient {params['r4_patient_id']}"
    return ""


def study_cards(gateway: Gateway, job: jobs.Job) -> list[StudyCard]:
    """The job's studies as the index has them now (thumbnails only for what is stored)."""
    cards = []
    links = gateway.settings.viewer_links
    for entry in job.checkpoint.get("studies") or ():
        uid = str(entry.get("study_uid", ""))
        indexed = gateway.index.study(uid)
        if indexed is None:  # found on the PACS but not (yet) fetched, or removed since
            removal = gateway.index.removal(uid)
            cards.append(
                StudyCard(
                    study_uid=uid,
                    date=str(entry.get("date") or ""),
                    modalities=", ".join(entry.get("modalities") or ()),
                    description=str(entry.get("description") or ""),
                    image_count=int(entry.get("received") or 0),
                    thumbnails=(),
                    more_series=0,
                    viewers=(),
                    in_store=False,
                    removed=f"{removal.said()}; fetch it again to see it." if removal else "",
                )
            )
            continue
        series = sorted(indexed.series, key=lambda s: s.series_uid)
        shown = series[:THUMBNAILS_PER_STUDY]
        cards.append(
            StudyCard(
                study_uid=uid,
                date=indexed.study_date.isoformat() if indexed.study_date else "",
                modalities=", ".join(indexed.modalities),
                description=indexed.description,
                image_count=indexed.instance_count,
                thumbnails=tuple(
                    Thumbnail(
                        s.series_uid,
                        preview_path(uid, s.series_uid, "thumbnail"),
                        preview_path(uid, s.series_uid, "preview"),
                    )
                    for s in shown
                ),
                more_series=len(series) - len(shown),
                viewers=tuple(render_links(links, uid)),
                in_store=True,
                keep=indexed.keep,
            )
        )
    return cards


def preview_path(study_uid: str, series_uid: str, kind: str) -> str:
    return f"{PAGES}/studies/{study_uid}/series/{series_uid}/{kind}.png"


def _words(job: jobs.Job, pacs: str, now: datetime) -> tuple[str, str, bool]:
    """(headline, the sentence people read, whether to point to the fallback procedure)."""
    state = job.state
    where = f"the PACS “{pacs}”" if pacs else "the PACS"
    if state == jobs.JobState.QUEUED:
        return "Fetching study, please wait", "The request is queued and starts shortly.", False
    if state == jobs.JobState.RUNNING:
        return "Fetching study, please wait", job.message or "Starting.", False
    if state == jobs.JobState.WAITING_RETRY:
        when = _in_words(job.next_attempt_at, now)
        return (
            "The PACS cannot be reached",
            f"The gateway cannot reach {where} at the moment. It tries again by itself "
            f"{when}; you do not need to ask again.",
            True,
        )
    if state == jobs.JobState.FAILED:
        return (
            "The fetch failed",
            f"{job.message or 'The gateway gave up on this fetch.'}",
            True,
        )
    if state == jobs.JobState.CANCELLED:
        return "The fetch was cancelled", "Nothing more is fetched for this request.", False
    if state == jobs.JobState.NEEDS_REVIEW:
        return (
            "A staff member needs to check this fetch",
            job.message or "Some studies wait for a person to confirm the patient.",
            False,
        )
    if not job.checkpoint.get("studies"):
        return "No study found", job.message or "The PACS has no study for this request.", False
    return "Studies fetched", job.message or "Done.", False


def _in_words(at: datetime | None, now: datetime) -> str:
    # A time, not a countdown: the page may stay open, and every page says when the same way.
    if at is None:
        return "shortly"
    return f"at {moment_text(at)}"
