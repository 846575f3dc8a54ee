"""The audit trail of staff actions on review items and patient links."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from gateway.api.auth import Permission, require
from gateway.api.deps import GatewayDep
from gateway.api.review_schemas import AuditEventOut, AuditList
from gateway.api.schemas import API, MAX_OFFSET

router = APIRouter(prefix=API, tags=["review"])


@router.get(
    "/audit",
    response_model=AuditList,
    summary="Who did what to review items and links",
    dependencies=[Depends(require(Permission.REVIEW))],
)
def list_audit(
    gateway: GatewayDep,
    subject: Annotated[
        str | None,
        Query(
            pattern=r"^(review|link):[0-9]{1,10}$",
            description="Only events about this, e.g. review:12 or link:5.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Most events to return.")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Events to skip (paging).")] = 0,
) -> AuditList:
    events = gateway.audit.list(offset=offset, limit=limit, subject=subject)
    return AuditList(items=[AuditEventOut.of(e) for e in events], limit=limit, offset=offset)
