"""Liveness (no key: load balancers probe it) and readiness (a key: it reveals the setup).

/ready is 503 only when this process cannot serve (database or storage failing). A PACS or
the R4 database that does not answer is reported in the body ("degraded") with 200: clients
must keep polling their jobs, which wait and retry, while the PACS is down.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from gateway.api.auth import Permission, require
from gateway.api.deps import GatewayDep
from gateway.api.schemas import CheckOut, Health, ReadinessOut

router = APIRouter(tags=["health"])
# What this process needs to answer at all; the PACS checks only say what jobs will meet.
_SERVING_CHECKS = ("database", "storage")


@router.get("/health", response_model=Health, summary="The process is alive")
async def health() -> Health:
    return Health(status="ok")


@router.get(
    "/ready",
    response_model=ReadinessOut,
    summary="Database, storage and each PACS answer",
    responses={
        503: {
            "model": ReadinessOut,
            "description": "The database or storage failed: this process cannot serve. A PACS "
            "that does not answer is 200 with status `degraded`.",
        }
    },
    dependencies=[Depends(require(Permission.READ))],
)
def ready(gateway: GatewayDep) -> JSONResponse:
    # Sync: the PACS check is a blocking C-ECHO, so this runs in the thread pool.
    readiness = gateway.readiness()  # with the practice side's r4, flynotes and sqs lines
    serving = all(readiness.checks[name].ok for name in _SERVING_CHECKS)
    body = ReadinessOut(
        status="ready" if readiness.ok else "degraded" if serving else "not_ready",
        checks={
            name: CheckOut(ok=c.ok, detail=c.detail, latency_ms=c.latency_ms)
            for name, c in readiness.checks.items()
        },
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if serving else 503)
