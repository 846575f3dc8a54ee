"""The day's patients: who comes in, and whether their studies are here already."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from gateway.api.auth import Permission
from gateway.prefetch.day import PatientState, PrefetchUnavailable, summary
from gateway.service import Gateway
from gateway.web.session import PAGES, PageUser, current_user, permitted
from gateway.web.templating import page
from r4.appointments import next_working_day

router = APIRouter(prefix=PAGES, include_in_schema=False)

R4_UNREADABLE = "R4's appointment book cannot be read just now; try again in a minute."
STATE_WORDS = {
    PatientState.WAITING: "not asked for yet",
    PatientState.FETCHING: "being fetched",
    PatientState.READY: "ready",
    PatientState.NEEDS_REVIEW: "needs review",
    PatientState.NOT_FETCHED: "could not be fetched",
}


async def reader(user: Annotated[PageUser, Depends(current_user)]) -> PageUser:
    return permitted(user, Permission.READ, "seeing the day's patients")


def day_line(gateway: Gateway, day: date) -> str | None:
    """The dashboard's line for `day`, or None when prefetch cannot run here."""
    try:
        return summary(day, gateway.prefetch_status(day))
    except PrefetchUnavailable:
        return None
    except SQLAlchemyError:
        return R4_UNREADABLE


@router.get("/prefetch", response_class=HTMLResponse)
async def prefetch_page(
    request: Request, user: Annotated[PageUser, Depends(reader)], day: str = ""
) -> Response:
    gateway: Gateway = request.app.state.gateway
    try:
        chosen = date.fromisoformat(day) if day else next_working_day(date.today())
    except ValueError:
        chosen = next_working_day(date.today())
    try:
        days = await run_in_threadpool(gateway.prefetch_status, chosen)
    except (PrefetchUnavailable, SQLAlchemyError) as exc:
        why = str(exc) if isinstance(exc, PrefetchUnavailable) else R4_UNREADABLE
        return page(
            request,
            "prefetch.html",
            {"title": "The day's patients", "user": user, "day": chosen, "unavailable": why},
        )
    names = await run_in_threadpool(
        gateway.patients.details, [d.planned.r4_patient_id for d in days]
    )
    rows = [
        {
            "time": d.planned.starts_at.strftime("%H:%M"),
            "name": names.get(d.planned.r4_patient_id, {}),
            "r4_patient_id": d.planned.r4_patient_id,
            "state": d.state.value,
            "words": STATE_WORDS[d.state],
            "job": d.job,
        }
        for d in days
    ]
    return page(
        request,
        "prefetch.html",
        {
            "title": "The day's patients",
            "user": user,
            "day": chosen,
            "summary": summary(chosen, days),
            "rows": rows,
            "previous": chosen - timedelta(days=1),
            "next": chosen + timedelta(days=1),
        },
    )
