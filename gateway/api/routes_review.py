"""The review queue: studies no rule could assign, for staff to resolve or dismiss."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from gateway.api.auth import Permission, require
from gateway.api.deps import GatewayDep
from gateway.api.problems import ApiProblem
from gateway.api.review_schemas import (
    DismissRequest,
    ResolveRequest,
    ReviewItemOut,
    ReviewList,
    StateFilter,
)
from gateway.api.schemas import API, MAX_OFFSET
from gateway.core.keys import ApiKey
from gateway.review import (
    ReviewNotFound,
    ReviewState,
)

router = APIRouter(prefix=API, tags=["review"])

# Ids are 32-bit integers in the database; larger ones cannot exist (and would overflow).
ID_MAX = 2**31 - 1

ItemId = Annotated[int, Path(ge=1, le=ID_MAX, description="The review item's id.")]
Reviewer = Annotated[ApiKey, Depends(require(Permission.REVIEW))]
_REVIEW = [Depends(require(Permission.REVIEW))]

# app._problem_openapi leaves 503s alone (/ready answers them with its own body): say it here.
R4_UNAVAILABLE: dict[str, Any] = {
    "description": "R4 could not be read to check the patient; nothing changed. Retry later.",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}
ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No review item has this id."},
    409: {"description": "The item was already resolved or dismissed."},
}


@router.get(
    "/review",
    response_model=ReviewList,
    summary="The review queue",
    description="Open items oldest first: work through them from the top.",
    dependencies=_REVIEW,
)
def list_review(
    gateway: GatewayDep,
    state: Annotated[
        StateFilter, Query(description="Which items: open (default), resolved, dismissed, all.")
    ] = StateFilter.OPEN,
    limit: Annotated[int, Query(ge=1, le=500, description="Most items to return.")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip (paging).")] = 0,
) -> ReviewList:
    wanted = None if state is StateFilter.ALL else ReviewState(state.value)
    items = gateway.review.list(state=wanted, offset=offset, limit=limit)
    return ReviewList(
        items=[ReviewItemOut.of(i) for i in items],
        total=gateway.review.count(wanted),
        limit=limit,
        offset=offset,
    )


@router.get(
    "/review/{item_id}",
    response_model=ReviewItemOut,
    summary="One review item, with its candidates",
    responses={404: {"description": "No review item has this id."}},
    dependencies=_REVIEW,
)
def get_review(item_id: ItemId, gateway: GatewayDep) -> ReviewItemOut:
    item = gateway.review.get(item_id)
    if item is None:
        raise ReviewNotFound()
    return ReviewItemOut.of(item)


@router.post(
    "/review/{item_id}/resolve",
    response_model=ReviewItemOut,
    summary="Link the study to an R4 patient",
    description="Remembers the link (PACS patient id and issuer -> R4 patient), closes the "
    "item and the other open items of the same PACS patient (`resolved_siblings`), and "
    "brings their studies in: one fetch job for exactly those studies "
    "(`follow_up_job_id`), or, for pushed studies, attaches the files already received. "
    "Audited as review.resolve for each item (and link.create for a new link).",
    responses={
        **ACTION_RESPONSES,
        409: {
            "description": "The item was already resolved or dismissed, or the PACS id is "
            "linked to another R4 patient."
        },
        422: {"description": "Invalid body, or no R4 patient has this id."},
        503: R4_UNAVAILABLE,
    },
)
def resolve_review(
    item_id: ItemId, body: ResolveRequest, gateway: GatewayDep, key: Reviewer
) -> ReviewItemOut:
    item = gateway.resolve_review(item_id, body.r4_patient_id, key.name)
    return ReviewItemOut.of(item)


@router.post(
    "/review/{item_id}/dismiss",
    response_model=ReviewItemOut,
    summary="Close the item without linking it",
    description="For studies that belong to no R4 patient. Audited as review.dismiss.",
    responses=ACTION_RESPONSES,
)
def dismiss_review(
    item_id: ItemId, body: DismissRequest, gateway: GatewayDep, key: Reviewer
) -> ReviewItemOut:
    try:
        item = gateway.dismiss_review(item_id, body.reason, key.name)
    except ValueError as exc:  # our own sentence (a reason of only spaces)
        raise ApiProblem(422, str(exc), kind="invalid-request") from None
    return ReviewItemOut.of(item)


@router.post(
    "/review/{item_id}/reopen",
    response_model=ReviewItemOut,
    summary="Put a dismissed item back in the queue",
    description="Takes a dismissal back: the item is open again, to be resolved or dismissed "
    "anew. While an item is dismissed, fetches and pushes of its study do not queue it "
    "again. Audited as review.reopen.",
    responses={
        404: {"description": "No review item has this id."},
        409: {
            "description": "The item is not dismissed (it is open or resolved), or another "
            "open item already holds its study."
        },
    },
)
def reopen_review(item_id: ItemId, gateway: GatewayDep, key: Reviewer) -> ReviewItemOut:
    item = gateway.reopen_review(item_id, key.name)
    return ReviewItemOut.of(item)
