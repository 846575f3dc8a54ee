"""The API's response bodies. Every field carries a description: it is the API's documentation.

Requests are `gateway.fetch.request.FetchRequest`; these models only describe what goes out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

import jobs
from gateway.core.viewer_links import ViewerLink, current_viewer_links, render_links
from gateway.index.study_index import IndexedStudy

API = "/api/v1"
# Paging offsets past this are refused (422): SQLite overflows on offsets past 64 bits.
MAX_OFFSET = 1_000_000


class JobLinks(BaseModel):
    self: str = Field(description="This job in the API.")
    cancel: str = Field(description="POST here to cancel the job.")
    retry: str = Field(description="POST here to queue a failed or cancelled job again.")
    events: str = Field(description="The job's history.")
    page: str = Field(description="The job's status page for people.")


class JobProgress(BaseModel):
    studies_total: int = Field(0, description="Studies found on the PACS for this request.")
    studies_done: int = Field(0, description="Studies fetched completely and indexed.")
    instances_expected: int = Field(0, description="Images the PACS holds for those studies.")
    instances_received: int = Field(0, description="Images received so far.")
    instances_failed: int = Field(0, description="Images the PACS reported as failed.")
    bytes: int = Field(0, description="Bytes received so far.")


class StudyProgress(BaseModel):
    study_uid: str = Field(description="Study Instance UID.")
    date: str | None = Field(None, description="Study date (YYYY-MM-DD), if the PACS gave one.")
    description: str = Field("", description="Study description from the PACS.")
    modalities: list[str] = Field(default_factory=list, description="Modalities in the study.")
    expected: int | None = Field(None, description="Images the PACS holds, once known.")
    received: int = Field(0, description="Images received so far.")
    done: bool = Field(False, description="True once every image arrived and was indexed.")


class JobOut(BaseModel):
    id: str = Field(description="Job id.")
    kind: str = Field(description="What the job does; `fetch` for study fetches.")
    state: jobs.JobState = Field(
        description="queued, running, waiting_retry (PACS unreachable; see next_attempt_at), "
        "needs_review, succeeded, failed or cancelled."
    )
    active: bool = Field(description="True while the job may still change on its own.")
    message: str = Field(description="One line for people, e.g. 'Fetching study 1 of 2'.")
    progress: JobProgress = Field(description="Numbers for programs.")
    request: dict[str, Any] = Field(description="The request the job carries out.")
    attempts: int = Field(description="Attempts so far (reset when retried by hand).")
    next_attempt_at: datetime | None = Field(
        None, description="When a job in waiting_retry tries again (UTC)."
    )
    cancel_requested: bool = Field(description="A cancel was asked for; the worker stops soon.")
    error: str | None = Field(None, description="The last error, one sentence, if any.")
    created_at: datetime = Field(description="When the job was submitted (UTC).")
    updated_at: datetime = Field(description="When the job last changed (UTC).")
    started_at: datetime | None = Field(None, description="First start of the current run.")
    finished_at: datetime | None = Field(None, description="When the job reached its end state.")
    studies: list[StudyProgress] = Field(
        default_factory=list, description="The studies found, each with its own progress."
    )
    links: JobLinks = Field(description="Related addresses.")

    @classmethod
    def of(cls, job: jobs.Job) -> JobOut:
        base = f"{API}/jobs/{job.id}"
        known = set(StudyProgress.model_fields)
        return cls(
            id=job.id,
            kind=job.kind,
            state=job.state,
            active=job.active,
            message=job.message,
            progress=JobProgress.model_validate(
                {k: v for k, v in job.progress.items() if k in JobProgress.model_fields}
            ),
            request=job.params,
            attempts=job.attempts,
            next_attempt_at=job.next_attempt_at,
            cancel_requested=job.cancel_requested,
            error=job.error,
            created_at=job.created_at,
            updated_at=job.updated_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            studies=[
                StudyProgress.model_validate({k: v for k, v in s.items() if k in known})
                for s in job.checkpoint.get("studies") or ()
            ],
            links=JobLinks(
                self=base,
                cancel=f"{base}/cancel",
                retry=f"{base}/retry",
                events=f"{base}/events",
                page=f"/jobs/{job.id}",
            ),
        )


class JobList(BaseModel):
    items: list[JobOut] = Field(description="Matching jobs, newest first.")
    limit: int = Field(description="Most jobs returned in one page.")
    offset: int = Field(description="Jobs skipped before this page.")


class JobEventOut(BaseModel):
    at: datetime = Field(description="When it happened (UTC).")
    state: jobs.JobState = Field(description="The job's state after the event.")
    message: str = Field(description="What happened, one line for people.")
    error: str | None = Field(None, description="The error that caused it, if any.")

    @classmethod
    def of(cls, event: jobs.JobEvent) -> JobEventOut:
        return cls(at=event.at, state=event.state, message=event.message, error=event.error)


class SeriesOut(BaseModel):
    series_uid: str = Field(description="Series Instance UID.")
    instance_count: int = Field(description="Images of the series in the store.")


class ViewerLinkOut(BaseModel):
    name: str = Field(description="The viewer's name, as configured.")
    url: str = Field(description="This study in that viewer.")


class SeriesPreviews(BaseModel):
    series_uid: str = Field(description="Series Instance UID.")
    preview: str = Field(description="PNG preview (longest side at most 1024 px).")
    thumbnail: str = Field(description="PNG thumbnail (longest side at most 128 px).")


class StudyLinks(BaseModel):
    self: str = Field(description="This study in the API.")
    job: str | None = Field(None, description="The job that fetched it, if known.")
    preview: str = Field(description="PNG preview of the study (its first series).")
    viewers: list[ViewerLinkOut] = Field(
        default_factory=list, description="The study in each configured image viewer."
    )


class KeepStudyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keep: bool = Field(description="True: never removed by the storage limits; false: as any.")


class RemoveStudyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: str = Field(
        min_length=1,
        max_length=500,
        description="Why the study is removed, e.g. 'filed under the wrong patient' (kept in "
        "the audit trail).",
    )


class StudyOut(BaseModel):
    study_uid: str = Field(description="Study Instance UID.")
    pacs: str = Field(description="The PACS it was fetched from.")
    pacs_patient_id: str = Field(description="The patient's PatientID on that PACS.")
    date: dt.date | None = Field(None, description="Study date, if the PACS gave one.")
    description: str = Field(description="Study description from the PACS.")
    modalities: list[str] = Field(description="Modalities in the study.")
    instance_count: int = Field(description="Images in the store.")
    bytes: int = Field(description="Size of those images in bytes.")
    fetched_at: datetime = Field(description="When it was indexed (UTC).")
    keep: bool = Field(
        False, description="Staff marked it to be kept whatever the storage limits say."
    )
    series: list[SeriesOut] | None = Field(
        None, description="Its series; only in the single-study response."
    )
    previews: list[SeriesPreviews] | None = Field(
        None, description="Preview images of each series; only in the single-study response."
    )
    links: StudyLinks = Field(description="Related addresses.")

    @classmethod
    def of(
        cls,
        s: IndexedStudy,
        *,
        with_series: bool = False,
        viewers: Sequence[ViewerLink] | None = None,
    ) -> StudyOut:
        """`viewers` defaults to the running gateway's (see gateway.core.viewer_links)."""
        base = f"{API}/studies/{s.study_uid}"
        viewer_links = current_viewer_links.get() if viewers is None else viewers
        return cls(
            study_uid=s.study_uid,
            pacs=s.pacs_name,
            pacs_patient_id=s.pacs_patient_id,
            date=s.study_date,
            description=s.description,
            modalities=list(s.modalities),
            instance_count=s.instance_count,
            bytes=s.bytes,
            fetched_at=s.fetched_at if s.fetched_at.tzinfo else s.fetched_at.replace(tzinfo=UTC),
            keep=s.keep,
            series=[
                SeriesOut(series_uid=x.series_uid, instance_count=x.instance_count)
                for x in s.series
            ]
            if with_series
            else None,
            previews=[
                SeriesPreviews(
                    series_uid=x.series_uid,
                    preview=f"{base}/series/{x.series_uid}/preview.png",
                    thumbnail=f"{base}/series/{x.series_uid}/thumbnail.png",
                )
                for x in s.series
            ]
            if with_series
            else None,
            links=StudyLinks(
                self=base,
                job=f"{API}/jobs/{s.job_id}" if s.job_id else None,
                preview=f"{base}/preview.png",
                viewers=[
                    ViewerLinkOut(name=name, url=url)
                    for name, url in render_links(viewer_links, s.study_uid)
                ],
            ),
        )


class PatientStudies(BaseModel):
    pacs_patient_id: str = Field(description="The PatientID asked for.")
    studies: list[StudyOut] = Field(description="Studies in the store, newest first.")


class Health(BaseModel):
    status: str = Field(description="'ok' while the process answers.")


class CheckOut(BaseModel):
    ok: bool = Field(description="True when this dependency works.")
    detail: str = Field(description="What was found, one sentence.")
    latency_ms: float | None = Field(None, description="How long the check took, if timed.")


class ReadinessOut(BaseModel):
    status: str = Field(
        description="'ready' when every check is ok; 'degraded' when only a PACS check failed "
        "(200: jobs wait and retry); 'not_ready' when the database or storage failed (503)."
    )
    checks: dict[str, CheckOut] = Field(
        description="Each check by name: database, storage, pacs:<name>, and r4 when an R4 "
        "database is configured."
    )


class FieldError(BaseModel):
    field: str = Field(description="Where the problem is, e.g. body.date_from or query.limit.")
    message: str = Field(description="What is wrong there (the value itself is not repeated).")


class Problem(BaseModel):
    """RFC 9457 problem details, sent as application/problem+json."""

    type: str = Field(description="URI naming the kind of problem; about:blank for plain HTTP.")
    title: str = Field(description="Short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong here and what to do, for people.")
    instance: str = Field(description="Id of this occurrence, also in the gateway's log.")
    errors: list[FieldError] | None = Field(
        None, description="For invalid requests: each field that is wrong."
    )
