"""Log in with an API key, log out."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from gateway.api.auth import KeysThrottled, check_not_throttled, count_failure
from gateway.core.keys import KeyStore
from gateway.web import session
from gateway.web.session import PAGES, PageUser, checked_form, current_user
from gateway.web.templating import NO_STORE, page

router = APIRouter(prefix=PAGES, include_in_schema=False)
log = logging.getLogger("gateway.web")

WRONG_KEY = (
    "This API key is not valid: it is unknown, mistyped or revoked. "
    "Check it, or ask an administrator for a new one."
)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    return _login_page(request, next_path=session.local_path(next))


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, form: Annotated[FormData, Depends(checked_form)]) -> Response:
    next_path = session.local_path(form.get("next"))
    plaintext = str(form.get("api_key") or "").strip()
    try:
        check_not_throttled(request)
    except KeysThrottled as exc:
        return _login_page(
            request,
            next_path=next_path,
            error=f"Too many wrong keys were typed on this computer in the last minute. "
            f"Try again in {exc.retry_after} seconds.",
            status=429,
            headers={"Retry-After": str(exc.retry_after)},
        )
    keys: KeyStore = request.app.state.keys
    key = await run_in_threadpool(keys.authenticate, plaintext) if plaintext else None
    if key is None:
        if plaintext:
            await count_failure(request, "page login")
        return _login_page(request, next_path=next_path, error=WRONG_KEY, status=401)
    session.begin(request, key)
    # The key's id and name, never the key: the log is read by people without keys.
    log.info("Page login with key %s (%s)", key.id, key.role)
    return RedirectResponse(next_path or f"{PAGES}/", status_code=303, headers=NO_STORE)


@router.post("/logout")
async def logout(
    request: Request,
    _user: Annotated[PageUser, Depends(current_user)],
    _form: Annotated[FormData, Depends(checked_form)],
) -> Response:
    session.end(request)
    request.session["notice"] = "You have logged out."
    return RedirectResponse(f"{PAGES}/login", status_code=303, headers=NO_STORE)


def _login_page(
    request: Request,
    *,
    next_path: str | None,
    error: str = "",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    notice = request.session.pop("notice", "")
    response = page(
        request,
        "login.html",
        {
            "title": "Log in",
            "csrf": session.csrf_token(request),
            "next_path": next_path or "",
            "error": error,
            "notice": notice,
        },
        status=status,
    )
    response.headers.update(headers or {})
    return response
