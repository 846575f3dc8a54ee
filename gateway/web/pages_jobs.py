"""The clinician's pages: jobs, one job's live progress and studies, starting a fetch, and
the study previews under the page session."""

from __future__ import annotations

import re
from datetime import date
from functools import partial
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

import jobs
from gateway.api.access_deps import study_patient
from gateway.api.auth import Permission
from gateway.api.problems import field_error
from gateway.api.routes_previews import serve_preview
from gateway.api.routes_studies import UID_PATTERN
from gateway.fetch.request import FetchRequest
from gateway.fetch.submit import FetchRefused
from gateway.index.study_index import StudyNotFound
from gateway.service import REMOVE_REASON_MAX, Gateway
from gateway.web.identity import earlier_fetches, job_identity
from gateway.web.job_page import job_view, patient_label
from gateway.web.redact import view_for
from gateway.web.review_access import may_review
from gateway.web.session import PAGES, PageUser, checked_form, current_user, permitted
from gateway.web.templating import NO_STORE, PageNotFound, page, render_fragment

router = APIRouter(prefix=PAGES, include_in_schema=False)
# The address the API gives as a job's page (JobOut.links.page).
legacy_router = APIRouter(include_in_schema=False)

_UID = re.compile(UID_PATTERN)
_JOB_ID = re.compile(r"^[A-Za-z0-9-]{1,36}$")
_NO_SUCH_JOB = "No job has this address; it may have been mistyped or come from another gateway."
LIST_LIMIT = 50
LONG_POLL_SECONDS = 20.0
CHECK_EVERY = 0.2
# Watching pages read the job store in a few threads, not the default pool's 40.
_READERS = anyio.CapacityLimiter(4)


async def reader(user: Annotated[PageUser, Depends(current_user)]) -> PageUser:
    return permitted(user, Permission.READ, "reading jobs and studies")


async def submitter(user: Annotated[PageUser, Depends(current_user)]) -> PageUser:
    return permitted(user, Permission.SUBMIT_FETCH, "requesting fetches")


Reader = Annotated[PageUser, Depends(reader)]


def _gateway(request: Request) -> Gateway:
    return request.app.state.gateway


@router.get("/jobs", response_class=HTMLResponse)
def job_list(request: Request, user: Reader, state: str | None = None) -> Response:
    states = {s.value for s in jobs.JobState}
    chosen = state if state in states else None
    gateway = _gateway(request)
    found = gateway.jobs.list(kind="fetch", state=chosen, limit=LIST_LIMIT)
    rows = [
        {"job": j, "patient": patient_label(j.params), "pacs": j.params.get("pacs", "")}
        for j in found
    ]
    return page(
        request,
        "jobs.html",
        {
            "title": "Fetch jobs",
            "user": user,
            "rows": rows,
            "states": sorted(states),
            "chosen": chosen or "",
            "limit": LIST_LIMIT,
        },
    )


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: str, user: Reader) -> Response:
    gateway = _gateway(request)
    job = _job(gateway, job_id)
    view = view_for(job_view(gateway, job), staff=may_review(user))
    gateway.access.viewed(user.name, "view.job", f"job:{job.id}", job.params)
    return page(
        request,
        "job.html",
        {
            "title": view.headline,
            "user": user,
            "view": view,
            "status_url": _status_url(job_id),
            "identity": job_identity(gateway, job),
            "earlier": earlier_fetches(gateway, job),
            "notice": request.session.pop("notice", ""),
        },
    )


@router.get("/jobs/{job_id}/status")
async def job_status(
    request: Request, job_id: str, user: Reader, after: int | None = None
) -> Response:
    """What the job page's script polls: numbers, and the panel HTML for a state change.

    With `after` (the version the page shows), a long poll: the answer waits until the job
    changes, or at most LONG_POLL_SECONDS, so each progress step shows within CHECK_EVERY
    seconds while the browser sends one request per change rather than a stream of them."""
    gateway = _gateway(request)
    job = await _read(gateway, job_id)
    if after is not None:
        deadline = anyio.current_time() + LONG_POLL_SECONDS
        while job.active and job.version == after and anyio.current_time() < deadline:
            if await request.is_disconnected():
                break
            await anyio.sleep(CHECK_EVERY)
            job = await _read(gateway, job_id)
    view = await anyio.to_thread.run_sync(job_view, gateway, job, limiter=_READERS)
    view = view_for(view, staff=may_review(user))
    html = render_fragment("_job_panel.html", {"view": view, "user": user})
    return JSONResponse(view.status(html), headers=NO_STORE)


async def _read(gateway: Gateway, job_id: str) -> jobs.Job:
    return await anyio.to_thread.run_sync(_job, gateway, job_id, limiter=_READERS)


@legacy_router.get("/jobs/{job_id}")
def job_page_redirect(job_id: str) -> Response:
    if not _JOB_ID.match(job_id):
        raise PageNotFound(_NO_SUCH_JOB)
    return RedirectResponse(f"{PAGES}/jobs/{job_id}", status_code=307)


@router.get("/fetch", response_class=HTMLResponse)
def fetch_form(request: Request, user: Annotated[PageUser, Depends(submitter)]) -> Response:
    return _fetch_page(request, user, {}, {})


@router.post("/fetch", response_class=HTMLResponse)
async def fetch(
    request: Request,
    user: Annotated[PageUser, Depends(submitter)],
    form: Annotated[FormData, Depends(checked_form)],
) -> Response:
    values = {k: str(form.get(k) or "").strip() for k in _FETCH_FIELDS}
    errors: dict[str, str] = {}
    request_body = _fetch_request(values, errors)
    if request_body is None:
        return _fetch_page(request, user, values, errors, status=422)
    gateway = _gateway(request)
    try:
        job, _ = await run_in_threadpool(
            partial(gateway.submit_fetch, request_body, key_name=user.key.name)
        )
    except FetchRefused as exc:
        errors["form"] = str(exc)
        return _fetch_page(request, user, values, errors, status=422)
    await run_in_threadpool(gateway.access.submitted, user.name, job.id, job.params)
    return RedirectResponse(f"{PAGES}/jobs/{job.id}", status_code=303, headers=NO_STORE)


async def remover(user: Annotated[PageUser, Depends(current_user)]) -> PageUser:
    return permitted(
        user,
        Permission.MANAGE_STUDIES,
        "removing studies from the gateway or marking them to be kept",
    )


@router.post("/studies/{study_uid}/remove", response_class=HTMLResponse)
async def remove_study(
    request: Request,
    study_uid: str,
    user: Annotated[PageUser, Depends(remover)],
    form: Annotated[FormData, Depends(checked_form)],
) -> Response:
    """Staff take a wrongly filed study out of the gateway, from the job page showing it."""
    back = _back_to_job(study_uid, form)
    reason = str(form.get("reason") or "").strip()
    try:
        await run_in_threadpool(_gateway(request).remove_study, study_uid, reason, user.name)
    except ValueError:  # no reason, or too long
        request.session["notice"] = (
            f"Not removed: give the reason for removing (1 to {REMOVE_REASON_MAX} "
            "characters); it is kept in the audit trail."
        )
    except StudyNotFound:
        request.session["notice"] = "The study was not in the gateway any more: nothing removed."
    else:
        request.session["notice"] = (
            "Removed: the study's images are no longer in the gateway or shown to anyone. "
            "The PACS keeps its copy; the removal and its reason are in the audit trail."
        )
    return RedirectResponse(back, status_code=303, headers=NO_STORE)


@router.post("/studies/{study_uid}/keep", response_class=HTMLResponse)
async def keep_study(
    request: Request,
    study_uid: str,
    user: Annotated[PageUser, Depends(remover)],
    form: Annotated[FormData, Depends(checked_form)],
) -> Response:
    """Staff mark a study to be kept whatever the storage limits say, or no longer."""
    back = _back_to_job(study_uid, form)
    keep = form.get("keep") == "1"
    try:
        await run_in_threadpool(_gateway(request).keep_study, study_uid, keep, user.name)
    except StudyNotFound:
        request.session["notice"] = "The study is not in the gateway any more."
    else:
        request.session["notice"] = (
            "Kept: the storage limits will not remove this study."
            if keep
            else "The storage limits may remove this study again when it is least used."
        )
    return RedirectResponse(back, status_code=303, headers=NO_STORE)


@router.get("/studies/{study_uid}/series/{series_uid}/{kind}.png")
async def series_image(
    request: Request, study_uid: str, series_uid: str, kind: str, _user: Reader
) -> Response:
    """The API's preview route (same cache, same renderer), under the page session."""
    if kind not in ("preview", "thumbnail") or not (
        len(study_uid) <= 64
        and len(series_uid) <= 64
        and _UID.match(study_uid)
        and _UID.match(series_uid)
    ):
        raise PageNotFound("There is no image at this address.")
    gateway = _gateway(request)
    await run_in_threadpool(gateway.retention.used, study_uid)
    await run_in_threadpool(
        gateway.access.viewed,
        _user.name,
        "view.preview",
        f"study:{study_uid}",
        lambda: study_patient(gateway, study_uid),
        study_uid=study_uid,
        series_uid=series_uid,
    )
    return await serve_preview(request, _gateway(request), study_uid, series_uid, kind)  # type: ignore[arg-type]


def _back_to_job(study_uid: str, form: FormData) -> str:
    """Where a study's button on a job page returns to; PageNotFound for a malformed UID."""
    if not (len(study_uid) <= 64 and _UID.match(study_uid)):
        raise PageNotFound("There is no study at this address.")
    job_id = str(form.get("job_id") or "")
    return f"{PAGES}/jobs/{job_id}" if _JOB_ID.match(job_id) else f"{PAGES}/jobs"


def _job(gateway: Gateway, job_id: str) -> jobs.Job:
    if not _JOB_ID.match(job_id):
        raise PageNotFound(_NO_SUCH_JOB)
    try:
        return gateway.jobs.get(job_id)
    except jobs.JobNotFound:
        raise PageNotFound(_NO_SUCH_JOB) from None


def _status_url(job_id: str) -> str:
    return f"{PAGES}/jobs/{job_id}/status"


# -- the fetch form ---------------------------------------------------------------------

_FETCH_FIELDS = ("id_kind", "patient_id", "pacs", "date_from", "date_to", "modalities")


def _fetch_request(values: dict[str, str], errors: dict[str, str]) -> FetchRequest | None:
    body: dict[str, Any] = {}
    if not values["patient_id"]:
        errors["patient_id"] = "Enter the patient's id."
    elif values["id_kind"] == "r4":
        body["r4_patient_id"] = values["patient_id"]
    else:
        body["pacs_patient_id"] = values["patient_id"]
    if values["pacs"]:
        body["pacs"] = values["pacs"]
    for name in ("date_from", "date_to"):
        if values[name]:
            try:
                body[name] = date.fromisoformat(values[name])
            except ValueError:
                errors[name] = "Enter a date as YYYY-MM-DD."
    body["modalities"] = [m for m in re.split(r"[\s,]+", values["modalities"]) if m]
    if errors:
        return None
    try:
        return FetchRequest.model_validate(body)
    except ValidationError as exc:
        for error in exc.errors():
            message = field_error(error).message
            where = str(error["loc"][0]) if error.get("loc") else "form"
            where = "patient_id" if where.endswith("patient_id") else where
            errors[where if where in values else "form"] = _sentence(message)
        return None


def _sentence(message: str) -> str:
    message = message.strip()
    return (message[:1].upper() + message[1:]).rstrip(".") + "."


def _fetch_page(
    request: Request,
    user: PageUser,
    values: dict[str, str],
    errors: dict[str, str],
    *,
    status: int = 200,
) -> Response:
    return page(
        request,
        "fetch.html",
        {
            "title": "Fetch a patient's studies",
            "user": user,
            "values": values,
            "errors": errors,
            "pacs_names": [p.name for p in _gateway(request).settings.pacs],
        },
        status=status,
    )
