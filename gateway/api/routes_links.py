"""Patient links: which R4 patient a PACS patient id (within its issuer) belongs to.

Every change is audited with the API key's name. The matcher reads links first, so a link
made or deleted here takes effect for the next fetch.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from gateway.api.auth import Permission, require
from gateway.api.deps import GatewayDep
from gateway.api.problems import ApiProblem
from gateway.api.review_schemas import ImportReportOut, LinkCreate, LinkList, LinkOut
from gateway.api.routes_review import ID_MAX, R4_UNAVAILABLE
from gateway.api.schemas import API, MAX_OFFSET
from gateway.core.keys import ApiKey
from gateway.review import LinkNotFound
from gateway.review import actions as review_actions
from gateway.review.link_import import HEADER, import_links
from gateway.review.links import PACS_ID_MAX, R4_ID_MAX

router = APIRouter(prefix=API, tags=["links"])

LinkId = Annotated[int, Path(ge=1, le=ID_MAX, description="The link's id.")]
Reviewer = Annotated[ApiKey, Depends(require(Permission.REVIEW))]
_REVIEW = [Depends(require(Permission.REVIEW))]
_NOT_FOUND = {404: {"description": "No link has this id."}}
_CSV_EXAMPLE = f"{','.join(HEADER)}\nEXT-77812,NORTHSIDE-RADIOLOGY,1003\n"


@router.get("/links", response_model=LinkList, summary="Find patient links", dependencies=_REVIEW)
def list_links(
    gateway: GatewayDep,
    r4_patient_id: Annotated[
        int | None, Query(ge=1, le=R4_ID_MAX, description="Only links to this R4 patient.")
    ] = None,
    pacs_patient_id: Annotated[
        str | None,
        Query(min_length=1, max_length=PACS_ID_MAX, description="Only links of this PatientID."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Most links to return.")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Links to skip (paging).")] = 0,
) -> LinkList:
    found = gateway.links.list(
        r4_patient_id=r4_patient_id, pacs_patient_id=pacs_patient_id, offset=offset, limit=limit
    )
    return LinkList(items=[LinkOut.of(k) for k in found], limit=limit, offset=offset)


@router.post(
    "/links",
    status_code=201,
    response_model=LinkOut,
    summary="Link a PACS patient id to an R4 patient",
    description="Audited as link.create. The same link again answers 200 and changes nothing.",
    responses={
        200: {"model": LinkOut, "description": "This link existed already."},
        201: {"description": "A new link; Location names it."},
        409: {"description": "The PACS id is linked to another R4 patient."},
        422: {"description": "Invalid body, or no R4 patient has this id."},
        503: R4_UNAVAILABLE,
    },
)
def create_link(
    body: LinkCreate, gateway: GatewayDep, key: Reviewer, response: Response
) -> LinkOut:
    review_actions.check_r4_patient(gateway.patients, body.r4_patient_id)
    link, created = review_actions.create_link(
        gateway.links,
        gateway.audit,
        body.pacs_patient_id,
        body.issuer,
        body.r4_patient_id,
        key.name,
    )
    out = LinkOut.of(link)
    response.status_code = 201 if created else 200
    response.headers["Location"] = out.self
    return out


@router.post(
    "/links/import",
    response_model=ImportReportOut,
    summary="Import links from CSV",
    description=f"A text/csv body (UTF-8) with the header `{','.join(HEADER)}`. Each row is "
    "created, found unchanged, or rejected with its line number and the reason; a file "
    "with a wrong header is refused whole. New links are audited as link.import.",
    responses={
        415: {"description": "The body is not text/csv."},
        422: {"description": "The file is not that CSV table; nothing was imported."},
        503: R4_UNAVAILABLE,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}, "example": _CSV_EXAMPLE}},
        }
    },
)
async def import_link_file(request: Request, gateway: GatewayDep, key: Reviewer) -> ImportReportOut:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "text/csv":
        raise ApiProblem(
            415,
            "The request body must be CSV (Content-Type: text/csv).",
            kind="unsupported-media-type",
        )
    data = await request.body()  # BodyLimit (64 KB) already bounds it
    report = await run_in_threadpool(
        import_links, gateway.links, gateway.audit, gateway.patients, data, key.name
    )
    return ImportReportOut.of(report)


@router.get(
    "/links/{link_id}",
    response_model=LinkOut,
    summary="One patient link",
    responses=_NOT_FOUND,
    dependencies=_REVIEW,
)
def get_link(link_id: LinkId, gateway: GatewayDep) -> LinkOut:
    link = gateway.links.get(link_id)
    if link is None:
        raise LinkNotFound()
    return LinkOut.of(link)


@router.delete(
    "/links/{link_id}",
    status_code=204,
    summary="Delete a patient link",
    description="The matcher stops using it at once. Audited as link.delete (with the link "
    "as it was).",
    responses=_NOT_FOUND,
)
def delete_link(link_id: LinkId, gateway: GatewayDep, key: Reviewer) -> Response:
    review_actions.delete_link(gateway.links, gateway.audit, link_id, key.name)
    return Response(status_code=204)
