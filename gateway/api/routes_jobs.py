"""Jobs: read (with ETag for cheap polling), list, cancel, retry, history."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Header, Path, Query, Response

import jobs
from gateway.api.auth import Permission, require
from gateway.api.deps import GatewayDep
from gateway.api.job_responses import job_headers, job_response, not_modified
from gateway.api.problems import ApiProblem
from gateway.api.schemas import API, MAX_OFFSET, JobEventOut, JobList, JobOut
from gateway.fetch.request import FetchRequest

router = APIRouter(prefix=API, tags=["jobs"])

JobId = Annotated[str, Path(min_length=1, max_length=36, description="The job's id.")]
_READ = [Depends(require(Permission.READ))]
_MANAGE = [Depends(require(Permission.MANAGE_JOBS))]
_PATIENT_ID = FetchRequest.model_fields["pacs_patient_id"].description
_R4_ID = FetchRequest.model_fields["r4_patient_id"].description

# Polls read the database in a few threads rather than the default pool's 40: with 100
# concurrent pollers, 40 threads only queue for the GIL and the 15 pooled connections.
_READERS = anyio.CapacityLimiter(4)

# Retry/cancel refusals as sentences, by the state the job was in.
_RETRY_FROM = "Only a failed, cancelled or needs-review job can be retried."


@router.get(
    "/jobs/{job_id}",
    response_model=JobOut,
    summary="A job's state and progress",
    description="Poll with If-None-Match set to the last ETag: 304 while nothing changed. "
    "Retry-After says when polling again is worth it.",
    responses={304: {"description": "Unchanged since the ETag given."}},
    dependencies=_READ,
)
async def get_job(
    job_id: JobId,
    gateway: GatewayDep,
    if_none_match: Annotated[
        str | None, Header(description="The ETag of the copy the client holds.")
    ] = None,
) -> Response:
    job = await anyio.to_thread.run_sync(_get, gateway.jobs, job_id, limiter=_READERS)
    if not_modified(if_none_match, job):
        return Response(status_code=304, headers=job_headers(job, gateway.jobs))
    return job_response(job, gateway.jobs)


@router.get("/jobs", response_model=JobList, summary="Find jobs", dependencies=_READ)
def list_jobs(
    gateway: GatewayDep,
    pacs_patient_id: Annotated[
        str | None, Query(min_length=1, max_length=64, description=_PATIENT_ID)
    ] = None,
    r4_patient_id: Annotated[
        str | None, Query(min_length=1, max_length=64, description=_R4_ID)
    ] = None,
    state: Annotated[
        list[jobs.JobState] | None, Query(description="Only jobs in these states; repeatable.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Most jobs to return.")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Jobs to skip (paging).")] = 0,
) -> JobList:
    match = {"pacs_patient_id": pacs_patient_id, "r4_patient_id": r4_patient_id}
    found = gateway.jobs.list(
        state=state or None,
        params_match={k: v for k, v in match.items() if v is not None},
        limit=limit,
        offset=offset,
    )
    return JobList(items=[JobOut.of(j) for j in found], limit=limit, offset=offset)


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=JobOut,
    summary="Cancel a job",
    description="A queued or waiting job is cancelled at once; a running one is asked to stop "
    "and shows cancel_requested until its worker does.",
    responses={409: {"description": "The job already finished."}},
    dependencies=_MANAGE,
)
def cancel_job(job_id: JobId, gateway: GatewayDep) -> Response:
    try:
        job = gateway.jobs.request_cancel(job_id)
    except jobs.JobNotFound:
        raise _not_found() from None
    except jobs.IllegalTransition as exc:
        raise ApiProblem(
            409,
            f"This job cannot be cancelled: it has already {_finished(exc.source)}.",
            kind="illegal-transition",
        ) from None
    return job_response(job, gateway.jobs)


@router.post(
    "/jobs/{job_id}/retry",
    response_model=JobOut,
    summary="Queue a failed or cancelled job again",
    description="The job keeps what it already fetched and resumes from there.",
    responses={409: {"description": "The job is not in a state that can be retried."}},
    dependencies=_MANAGE,
)
def retry_job(job_id: JobId, gateway: GatewayDep) -> Response:
    try:
        job = gateway.jobs.retry(job_id)
    except jobs.JobNotFound:
        raise _not_found() from None
    except jobs.IllegalTransition as exc:
        raise ApiProblem(409, _retry_refusal(exc), kind="illegal-transition") from None
    return job_response(job, gateway.jobs)


@router.get(
    "/jobs/{job_id}/events",
    response_model=list[JobEventOut],
    summary="A job's history, oldest first",
    dependencies=_READ,
)
def job_events(job_id: JobId, gateway: GatewayDep) -> list[JobEventOut]:
    try:
        return [JobEventOut.of(e) for e in gateway.jobs.events(job_id)]
    except jobs.JobNotFound:
        raise _not_found() from None


def _get(store: jobs.JobStore, job_id: str) -> jobs.Job:
    try:
        return store.get(job_id)
    except jobs.JobNotFound:
        raise _not_found() from None


def _not_found() -> ApiProblem:
    return ApiProblem(404, "No job has this id; it may have been mistyped.", kind="job-not-found")


def _finished(state: str) -> str:
    return {"succeeded": "succeeded", "failed": "failed"}.get(state, f"ended ({state})")


def _retry_refusal(exc: jobs.IllegalTransition) -> str:
    if exc.source in (jobs.JobState.QUEUED, jobs.JobState.RUNNING, jobs.JobState.WAITING_RETRY):
        return f"This job cannot be retried: it is still {exc.source}. {_RETRY_FROM}"
    if exc.source == jobs.JobState.SUCCEEDED:
        return f"This job cannot be retried: it succeeded. {_RETRY_FROM}"
    # From a retryable state, the store refuses only when the same request is active again.
    return (
        "This job cannot be retried: another job for the same request is active; "
        "follow that one instead."
    )
