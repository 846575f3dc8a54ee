"""A job as an HTTP response: body, ETag, Retry-After; shared by the fetch and job routes."""

from __future__ import annotations

import math
from collections.abc import Mapping

from fastapi import Response

import jobs
from gateway.api.schemas import API, JobOut

DEFAULT_RETRY_AFTER = 2  # seconds between polls of a job that is queued or running
# Pollers should revalidate every time (If-None-Match) rather than reuse a stale copy.
_CACHE_CONTROL = "private, no-cache"


def job_location(job_id: str) -> str:
    return f"{API}/jobs/{job_id}"


def job_headers(job: jobs.Job, store: jobs.JobStore | None = None) -> dict[str, str]:
    headers = {"ETag": job.etag, "Cache-Control": _CACHE_CONTROL}
    if job.active:
        headers["Retry-After"] = str(retry_after(job, store))
    return headers


def retry_after(job: jobs.Job, store: jobs.JobStore | None) -> int:
    """Seconds until polling again is worth it: the next attempt of a job waiting to retry."""
    if job.state == jobs.JobState.WAITING_RETRY and job.next_attempt_at and store is not None:
        seconds = (job.next_attempt_at - store.now()).total_seconds()
        return max(1, math.ceil(seconds))
    return DEFAULT_RETRY_AFTER


def job_response(
    job: jobs.Job,
    store: jobs.JobStore,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    # Serialised here rather than through response_model: FastAPI would validate the model
    # a second time, which is a measurable share of a poll.
    return Response(
        JobOut.of(job).model_dump_json(),
        status_code=status,
        media_type="application/json",
        headers={**job_headers(job, store), **(headers or {})},
    )


def not_modified(if_none_match: str | None, job: jobs.Job) -> bool:
    """True when the client's If-None-Match names the job's current ETag (weak comparison)."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or job.etag in tags
