"""POST /api/v1/fetches: queue a fetch, or return the job already doing it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response

from gateway.api.auth import Permission, require
from gateway.api.deps import GatewayDep
from gateway.api.job_responses import job_location, job_response
from gateway.api.schemas import API, JobOut
from gateway.core.keys import ApiKey
from gateway.fetch.request import FetchRequest

router = APIRouter(prefix=API, tags=["fetches"])


@router.post(
    "/fetches",
    status_code=202,
    response_model=JobOut,
    summary="Fetch a patient's studies",
    responses={
        200: {"model": JobOut, "description": "The same request is already active: that job."},
        202: {"description": "A new job; Location names it."},
        422: {"description": "Invalid request, unknown PACS, or Idempotency-Key reused."},
    },
)
def submit_fetch(
    body: FetchRequest,
    gateway: GatewayDep,
    key: Annotated[ApiKey, Depends(require(Permission.SUBMIT_FETCH))],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            description="Any unique string; re-sending the same request with it returns the "
            "job the first one created, even after that job finished.",
        ),
    ] = None,
) -> Response:
    # Refusals (FetchRefused) become problems in gateway.api.errors.
    job, created = gateway.submit_fetch(
        body, idempotency=idempotency_key, api_key_id=key.id, key_name=key.name
    )
    gateway.access.submitted(key.name, job.id, job.params)
    return job_response(
        job,
        gateway.jobs,
        status=202 if created else 200,
        headers={"Location": job_location(job.id)},
    )
