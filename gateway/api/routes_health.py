"""Liveness (no key: load balancers probe it) and readiness (a key: it reveals the setup)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from gateway.api.auth import Permission, require
from gateway.api.deps import GatewayDep
from gateway.api.schemas import CheckOut, Health, ReadinessOut

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, summary="The process is alive")
async def health() -> Health:
    return Health(status="ok")


@router.get(
    "/ready",
    response_model=ReadinessOut,
    summary="Database, storage and each PACS answer",
    responses={503: {"model": ReadinessOut, "description": "A check failed; see `checks`."}},
    dependencies=[Depends(require(Permission.READ))],
)
def ready(gateway: GatewayDep) -> JSONResponse:
    # Sync: the PACS check is a blocking C-ECHO, so this runs in the thread pool.
    readiness = gateway.readiness()
    body = ReadinessOut(
        status="ready" if readiness.ok else "not_ready",
        checks={
            name: CheckOut(ok=c.ok, detail=c.detail, latency_ms=c.latency_ms)
            for name, c in readiness.checks.items()
        },
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if readiness.ok else 503)
