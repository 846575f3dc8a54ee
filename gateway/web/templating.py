"""The pages' jinja2 templates, and the HTML answers for login, 403 and 404."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from gateway.web.session import PAGES, LoginRequired, PageForbidden

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
FALLBACK_URL = f"{PAGES}/fallback"
# Pages change with every job update and hold patient data: never stored by browsers/proxies.
NO_STORE = {"Cache-Control": "no-store"}
# Only our own script, styles, images and forms; never framed (clickjacking a Resolve button).
HTML_HEADERS = {
    **NO_STORE,
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


class PageNotFound(Exception):
    """A 404 page with one sentence."""

    def __init__(self, sentence: str) -> None:
        super().__init__(sentence)
        self.sentence = sentence


def iso(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def pn_parts(text: object) -> tuple[str, str]:
    """(family, given) of DICOM PN text such as 'Müller^Zoë^Anna' (alphabetic group only)."""
    if not isinstance(text, str) or not text:
        return "", ""
    parts = text.split("=")[0].split("^")
    given = " ".join(p for p in parts[1:3] if p)
    return parts[0], given


templates.env.filters["pn_parts"] = pn_parts
templates.env.filters["iso"] = iso
templates.env.globals.update(PAGES=PAGES, FALLBACK_URL=FALLBACK_URL)


def page(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> HTMLResponse:
    context = {"user": getattr(request.state, "page_user", None), **(context or {})}
    return templates.TemplateResponse(
        request, name, context, status_code=status, headers=HTML_HEADERS
    )


def render_fragment(name: str, context: dict[str, Any]) -> str:
    return templates.get_template(name).render(context)


async def login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    if "application/json" in request.headers.get("accept", ""):
        # The progress script: it sends the reader to the login page itself.
        return JSONResponse(
            {"detail": "Your session has ended; log in again.", "login": login_url(exc.next_path)},
            status_code=401,
            headers=NO_STORE,
        )
    return RedirectResponse(login_url(exc.next_path), status_code=303, headers=NO_STORE)


def login_url(next_path: str | None) -> str:
    if not next_path or next_path == f"{PAGES}/":
        return f"{PAGES}/login"
    return f"{PAGES}/login?{urlencode({'next': next_path})}"


async def forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageForbidden)
    return page(
        request,
        "error.html",
        {"title": "Not allowed", "sentence": exc.sentence},
        status=403,
    )


async def not_found(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageNotFound)
    return page(request, "error.html", {"title": "Not found", "sentence": exc.sentence}, status=404)
