"""The dashboard (PACS reachability, jobs by state, review queue) and the fallback procedure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from gateway.api.auth import Permission
from gateway.service import Gateway
from gateway.web.fallback_page import document_parts, last_reached
from gateway.web.pages_prefetch import day_line
from gateway.web.review_access import review_count
from gateway.web.session import PAGES, PageUser, current_user, permitted
from gateway.web.templating import PageNotFound, page
from r4.appointments import next_working_day

router = APIRouter(prefix=PAGES, include_in_schema=False)
# Included after every other page router: an unknown address under /ui gets a 404 page
# (after the login check, so it tells nobody what exists).
fallthrough = APIRouter(prefix=PAGES, include_in_schema=False)


@dataclass(frozen=True)
class CheckRow:
    name: str
    ok: bool
    detail: str
    latency_ms: float | None
    is_pacs: bool


async def reader(user: Annotated[PageUser, Depends(current_user)]) -> PageUser:
    return permitted(user, Permission.READ, "seeing the gateway's state")


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, user: Annotated[PageUser, Depends(reader)]) -> Response:
    gateway: Gateway = request.app.state.gateway
    counts = gateway.jobs.counts()
    checks = check_rows(gateway)
    return page(
        request,
        "dashboard.html",
        {
            "title": "Dashboard",
            "user": user,
            "checks": checks,
            "all_ok": all(c.ok for c in checks),
            "counts": [(state.value, n) for state, n in counts.items()],
            "review_open": review_count(gateway),
            "next_day": day_line(gateway, next_working_day(date.today())),
        },
    )


@router.get("/fallback", response_class=HTMLResponse)
def fallback(request: Request) -> Response:
    """Public on purpose: it is what people read when they cannot log in or the PACS is down,
    and it holds no patient data."""
    gateway: Gateway = request.app.state.gateway
    before, after = document_parts()
    return page(
        request,
        "fallback.html",
        {
            "title": "When images cannot be fetched",
            "document_before": before,
            "document_after": after,
            "contacts": gateway.settings.contacts.listed(),
            "reached": last_reached(gateway),
        },
    )


def check_rows(gateway: Gateway) -> list[CheckRow]:
    """Database, storage and a C-ECHO to each PACS, with how long each took."""
    readiness = gateway.readiness()
    rows = []
    for name, check in readiness.checks.items():
        if name.startswith("pacs:"):
            label = f"PACS “{name.removeprefix('pacs:')}”"
        else:
            label = name.capitalize()
        rows.append(
            CheckRow(label, check.ok, check.detail, check.latency_ms, name.startswith("pacs:"))
        )
    return rows


@fallthrough.get("/{rest:path}", response_class=HTMLResponse)
def unknown_page(rest: str, _user: Annotated[PageUser, Depends(current_user)]) -> Response:
    raise PageNotFound("There is no page at this address; the menu above lists the pages.")
