"""`GET /metrics`: Prometheus text format; any key with read permission (Prometheus sends it
as `authorization: {type: Bearer, credentials: ...}`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from gateway.api.auth import Permission, require
from gateway.api.deps import GatewayDep
from gateway.api.metrics import exposition, registry_for

# What generate_latest() writes (newer prometheus_client names 1.0.0 as "latest").
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"

router = APIRouter(tags=["health"], dependencies=[Depends(require(Permission.READ))])


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics: jobs, fetches, stored instances, review queue, PACS",
    responses={200: {"content": {TEXT_FORMAT: {}}}},
)
async def metrics(request: Request, gateway: GatewayDep) -> Response:
    registry = getattr(request.app.state, "metrics_registry", None)
    if registry is None:
        registry = request.app.state.metrics_registry = registry_for(gateway)
    # The database metrics are read now: off the event loop.
    body = await run_in_threadpool(exposition, registry)
    return Response(body, media_type=TEXT_FORMAT)
