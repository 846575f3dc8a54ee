"""Staff pages: the review queue (resolve by linking to an R4 patient, or dismiss with a
reason, and reopen a dismissed item), one item with its outcome and history, and the audit
trail."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from gateway.api.auth import Permission
from gateway.review import (
    AuditEvent,
    LinkConflict,
    R4Unavailable,
    ReviewAlreadyQueued,
    ReviewClosed,
    ReviewError,
    ReviewItem,
    ReviewNotDismissed,
    ReviewNotFound,
    ReviewState,
    UnknownR4Patient,
)
from gateway.review.access import PATIENT_KEYS, SUBMIT, VIEW_ACTIONS, csv_text, find_events
from gateway.service import Gateway
from gateway.web.review_look import review_look
from gateway.web.session import PAGES, PageUser, checked_form, current_user, permitted
from gateway.web.templating import NO_STORE, PageNotFound, page

router = APIRouter(prefix=PAGES, include_in_schema=False)

PAGE_SIZE = 20
AUDIT_PAGE_SIZE = 50
MAX_OFFSET = 1_000_000
DISMISS_REASON_MAX = 500
# Files held back from senders, newest first, listed under the queue (the store keeps more).
HELD_SHOWN = 50
SEARCH_MAX = 100
SEARCH_LIMIT = 20
# One CSV export holds at most this many events (newest first); narrow the filters for more.
CSV_MAX_ROWS = 100_000
# The other items a resolve closed, named on the item's page after it: at most this many.
SIBLINGS_SHOWN = 50
_ITEM_ID = re.compile(r"^[0-9]{1,12}$")
_NO_SUCH_ITEM = "No review item has this address; it may have been mistyped."
_STATUS = {
    ReviewNotFound: 404,
    ReviewClosed: 409,
    ReviewNotDismissed: 409,
    ReviewAlreadyQueued: 409,
    LinkConflict: 409,
    UnknownR4Patient: 422,
    R4Unavailable: 503,
}


async def reviewer(user: Annotated[PageUser, Depends(current_user)]) -> PageUser:
    return permitted(
        user, Permission.REVIEW, "reviewing unmatched studies, patient links and the audit trail"
    )


Reviewer = Annotated[PageUser, Depends(reviewer)]
Form = Annotated[FormData, Depends(checked_form)]


@dataclass(frozen=True)
class AuditRow:
    event: AuditEvent
    review_id: int | None
    changes: list[tuple[str, Any, Any]]
    job_id: str | None = None
    patient: str = ""


@router.get("/review", response_class=HTMLResponse)
def review_queue(
    request: Request, user: Reviewer, state: str = "open", offset: int = 0
) -> Response:
    gateway = _gateway(request)
    chosen = ReviewState(state) if state in {s.value for s in ReviewState} else ReviewState.OPEN
    offset = min(max(offset, 0), MAX_OFFSET)
    items = gateway.review.list(state=chosen, offset=offset, limit=PAGE_SIZE)
    total = gateway.review.count(chosen)
    before_deciding = decision_context(gateway, items)
    return page(
        request,
        "review.html",
        {
            "title": "Review queue",
            "user": user,
            "items": items,
            "chosen": chosen.value,
            "states": [s.value for s in ReviewState],
            "total": total,
            "offset": offset,
            "page_size": PAGE_SIZE,
            "notice": request.session.pop("notice", ""),
            "held": gateway.node.store.held_notes(HELD_SHOWN),
            **before_deciding,
        },
    )


@router.get("/review/{item_id}", response_class=HTMLResponse)
def review_item(request: Request, item_id: str, user: Reviewer) -> Response:
    gateway = _gateway(request)
    item = _item(gateway, item_id)
    resolved_with = request.session.pop("resolved_siblings", None)
    siblings: list[ReviewItem] = []
    if isinstance(resolved_with, dict) and resolved_with.get("item") == item.id:
        found = (gateway.review.get(int(i)) for i in resolved_with.get("ids") or ())
        siblings = [s for s in found if s is not None]
    return _item_page(
        request,
        user,
        gateway,
        item,
        notice=request.session.pop("notice", ""),
        siblings=siblings,
        more_siblings=int(resolved_with.get("more", 0)) if siblings else 0,
    )


@router.post("/review/{item_id}/resolve", response_class=HTMLResponse)
async def resolve(request: Request, item_id: str, user: Reviewer, form: Form) -> Response:
    gateway = _gateway(request)
    number = _number(item_id)
    r4_text = str(form.get("r4_patient_id") or "").strip()
    if not re.fullmatch(r"[0-9]{1,12}", r4_text):
        item = await run_in_threadpool(_item, gateway, item_id)
        return _item_page(
            request,
            user,
            gateway,
            item,
            error="Enter the R4 patient id as a number (R4's patient number, not the chart "
            "number).",
            status=422,
        )
    try:
        item = await run_in_threadpool(gateway.resolve_review, number, int(r4_text), user.name)
    except ReviewError as exc:
        return await _refused(request, user, gateway, item_id, exc)
    request.session["notice"] = _resolved_notice(item)
    if item.resolved_siblings:
        # Not stored with the item (its audit events are): shown once, on the page below.
        request.session["resolved_siblings"] = {
            "item": item.id,
            "ids": list(item.resolved_siblings[:SIBLINGS_SHOWN]),
            "more": max(len(item.resolved_siblings) - SIBLINGS_SHOWN, 0),
        }
    return RedirectResponse(f"{PAGES}/review/{item.id}", status_code=303, headers=NO_STORE)


@router.post("/review/{item_id}/dismiss", response_class=HTMLResponse)
async def dismiss(request: Request, item_id: str, user: Reviewer, form: Form) -> Response:
    gateway = _gateway(request)
    number = _number(item_id)
    reason = str(form.get("reason") or "").strip()
    if not reason or len(reason) > DISMISS_REASON_MAX:
        item = await run_in_threadpool(_item, gateway, item_id)
        return _item_page(
            request,
            user,
            gateway,
            item,
            error=f"Give the reason for dismissing (1 to {DISMISS_REASON_MAX} characters); "
            "it is kept in the audit trail.",
            status=422,
            reason=reason,
        )
    try:
        item = await run_in_threadpool(gateway.dismiss_review, number, reason, user.name)
    except (ReviewError, ValueError) as exc:
        return await _refused(request, user, gateway, item_id, exc)
    request.session["notice"] = (
        "Dismissed. The study is not fetched; the reason is in the audit trail."
    )
    return RedirectResponse(f"{PAGES}/review/{item.id}", status_code=303, headers=NO_STORE)


@router.post("/review/{item_id}/reopen", response_class=HTMLResponse)
async def reopen(request: Request, item_id: str, user: Reviewer, form: Form) -> Response:
    """Take a dismissal back: the item is open again, to be decided anew (audited)."""
    gateway = _gateway(request)
    number = _number(item_id)
    try:
        item = await run_in_threadpool(gateway.reopen_review, number, user.name)
    except ReviewError as exc:
        return await _refused(request, user, gateway, item_id, exc)
    request.session["notice"] = (
        "Reopened: the item is back in the queue, to be resolved or dismissed anew; "
        "the reopening is in the audit trail."
    )
    return RedirectResponse(f"{PAGES}/review/{item.id}", status_code=303, headers=NO_STORE)


@router.post("/review/{item_id}/search", response_class=HTMLResponse)
async def search_patients(request: Request, item_id: str, user: Reviewer, form: Form) -> Response:
    """R4 patients for someone who is not among the candidates. A POST so the names typed
    stay out of addresses (browser history, proxy logs)."""
    gateway = _gateway(request)
    item = await run_in_threadpool(_item, gateway, item_id)
    text = str(form.get("q") or "").strip()[:SEARCH_MAX]
    if not text:
        return _item_page(
            request,
            user,
            gateway,
            item,
            error="Type a name, chart number or birth date.",
            status=422,
        )
    try:
        records = await run_in_threadpool(gateway.patients.search, text, SEARCH_LIMIT)
    except sa.exc.SQLAlchemyError:
        return _item_page(
            request,
            user,
            gateway,
            item,
            status=503,
            error="R4 could not be searched just now; try again, or enter the R4 patient id.",
        )
    found = [(r.id, gateway.patients.display(r)) for r in records]
    return _item_page(request, user, gateway, item, search=text, found=found)


@router.get("/audit", response_class=HTMLResponse)
def audit_trail(
    request: Request, user: Reviewer, offset: int = 0, patient: str = "", key: str = ""
) -> Response:
    gateway = _gateway(request)
    offset = min(max(offset, 0), MAX_OFFSET)
    patient, key = patient.strip()[:64], key.strip()[:128]
    events, total = find_events(
        gateway.audit, patient=patient, actor=key, offset=offset, limit=AUDIT_PAGE_SIZE
    )
    return page(
        request,
        "audit.html",
        {
            "title": "Audit trail",
            "user": user,
            "rows": [audit_row(e) for e in events],
            "total": total,
            "offset": offset,
            "page_size": AUDIT_PAGE_SIZE,
            "patient": patient,
            "key": key,
            "query": urlencode({k: v for k, v in (("patient", patient), ("key", key)) if v}),
        },
    )


@router.get("/audit.csv")
def audit_csv(request: Request, user: Reviewer, patient: str = "", key: str = "") -> Response:
    """The events the audit page shows for the same filters, every page of them, as CSV."""
    events, _ = find_events(
        _gateway(request).audit,
        patient=patient.strip()[:64],
        actor=key.strip()[:128],
        limit=CSV_MAX_ROWS,
    )
    return Response(
        csv_text(events),
        media_type="text/csv; charset=utf-8",
        headers={**NO_STORE, "Content-Disposition": 'attachment; filename="audit.csv"'},
    )


def audit_row(event: AuditEvent) -> AuditRow:
    before, after = event.before or {}, event.after or {}
    changes = [
        (key, before.get(key), after.get(key))
        for key in dict.fromkeys([*before, *after])
        if before.get(key) != after.get(key)
    ]
    kind, _, number = event.subject.partition(":")
    review_id = int(number) if kind == "review" and number.isdigit() else None
    job_id = number if kind == "job" and number else None
    if event.action in (SUBMIT, *VIEW_ACTIONS):
        changes = []  # what was opened, not a change: the patient column says whose
    ids = [str(after.get(k) or before.get(k) or "") for k in PATIENT_KEYS]
    patient = " / ".join(f"{label} {v}" for label, v in zip(("PACS", "R4"), ids, strict=True) if v)
    return AuditRow(event, review_id, changes, job_id, patient)


def decision_context(gateway: Gateway, items: list[ReviewItem]) -> dict[str, Any]:
    """What the review templates say before and after a decision: how many other waiting
    items each open item takes with it, and whom each resolved item was linked to."""
    open_siblings = {i.id: len(gateway.review.open_siblings(i)) for i in items if i.is_open}
    resolved = [i.resolved_r4_patient_id for i in items if i.resolved_r4_patient_id is not None]
    try:
        people = gateway.patients.details(resolved) if resolved else {}
    except sa.exc.SQLAlchemyError:  # R4 down: the page says it cannot show who
        people = {}
    resolved_to = {
        i.id: people[i.resolved_r4_patient_id]
        for i in items
        if i.resolved_r4_patient_id is not None and i.resolved_r4_patient_id in people
    }
    return {"open_siblings": open_siblings, "resolved_to": resolved_to}


def _item_page(
    request: Request,
    user: PageUser,
    gateway: Gateway,
    item: ReviewItem,
    *,
    notice: str = "",
    error: str = "",
    status: int = 200,
    reason: str = "",
    search: str | None = None,
    found: list[tuple[int, dict[str, str | None]]] | None = None,
    siblings: list[ReviewItem] | None = None,
    more_siblings: int = 0,
    holder_id: int | None = None,
) -> Response:
    events = gateway.audit.list(subject=f"review:{item.id}", limit=AUDIT_PAGE_SIZE)
    look = review_look(gateway, item) if item.is_open else None
    return page(
        request,
        "review_item.html",
        {
            "title": f"Review item {item.id}",
            "user": user,
            "item": item,
            "notice": notice,
            "error": error,
            "reason": reason,
            "search": search,
            "found": found or [],
            "siblings": siblings or [],
            "more_siblings": more_siblings,
            "holder_id": holder_id,
            "history": [audit_row(e) for e in events],
            "look": look,
            **decision_context(gateway, [item]),
        },
        status=status,
    )


async def _refused(
    request: Request, user: PageUser, gateway: Gateway, item_id: str, exc: Exception
) -> Response:
    """The item again, with the refusal's sentence (the review package words them for
    people, without patient data)."""
    item = await run_in_threadpool(_item, gateway, item_id)
    status = _STATUS.get(type(exc), 422)
    holder = exc.open_item_id if isinstance(exc, ReviewAlreadyQueued) else None
    return _item_page(request, user, gateway, item, error=str(exc), status=status, holder_id=holder)


def _resolved_notice(item: ReviewItem) -> str:
    if item.follow_up_job_id:
        text = "Resolved: the link is remembered and the study is being fetched."
    elif item.origin.value == "push":
        text = "Resolved: the link is remembered and the study is attached to the patient."
    else:
        text = (
            "Resolved: the link is remembered. No fetch could be queued for the study; see the log."
        )
    count = len(item.resolved_siblings)
    if count == 1:
        text += " 1 other item of the same PACS patient was resolved with it (listed below)."
    elif count:
        text += (
            f" {count} other items of the same PACS patient were resolved with it (listed below)."
        )
    return text


def _number(item_id: str) -> int:
    if not _ITEM_ID.match(item_id):
        raise PageNotFound(_NO_SUCH_ITEM)
    return int(item_id)


def _item(gateway: Gateway, item_id: str) -> ReviewItem:
    item = gateway.review.get(_number(item_id))
    if item is None:
        raise PageNotFound(_NO_SUCH_ITEM)
    return item


def _gateway(request: Request) -> Gateway:
    return request.app.state.gateway
