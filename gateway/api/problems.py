"""RFC 9457 problem details for every error the API returns.

Error bodies never repeat what the client sent: paths, query strings and field values may be
patient identifiers. `instance` is a fresh id per occurrence, logged beside 500s so an operator
can match a client's report to the log without the log holding the request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any
from uuid import uuid4

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.api.schemas import FieldError, Problem

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "urn:pacs-gateway:problem:"

log = logging.getLogger("gateway.api")

# Sentences for the statuses the framework raises itself (unknown path, wrong method...).
_DETAILS: Mapping[int, str] = {
    404: "There is nothing at this address. The API lives under /api/v1; see /docs.",
    405: "This address does not accept this HTTP method; the Allow header lists those it does.",
    413: "The request body is too large.",
    415: "The request body must be JSON (Content-Type: application/json).",
}


class ApiProblem(Exception):
    """Raised by routes and dependencies; turned into a problem+json response."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[FieldError] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind
        self.headers = dict(headers or {})
        self.errors = list(errors) if errors is not None else None


def problem_response(
    status: int,
    detail: str,
    *,
    kind: str | None = None,
    headers: Mapping[str, str] | None = None,
    errors: Sequence[FieldError] | None = None,
    instance: str | None = None,
) -> JSONResponse:
    problem = Problem(
        type=f"{TYPE_BASE}{kind}" if kind else "about:blank",
        title=_title(status, kind),
        status=status,
        detail=detail,
        instance=instance or new_instance(),
        errors=list(errors) if errors is not None else None,
    )
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=status,
        headers=dict(headers or {}),
        media_type=PROBLEM_JSON,
    )


def new_instance() -> str:
    return f"urn:uuid:{uuid4()}"


def install(app: FastAPI) -> None:
    """Route every error through problem_response (500s: see middleware.RequestLog)."""
    app.add_exception_handler(ApiProblem, _api_problem)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_exception)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]


async def _api_problem(_request: Request, exc: ApiProblem) -> JSONResponse:
    return problem_response(
        exc.status, exc.detail, kind=exc.kind, headers=exc.headers, errors=exc.errors
    )


async def _http_exception(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = _DETAILS.get(exc.status_code)
    if detail is None:
        # Our own code raises ApiProblem; anything else keeps only a generic sentence, since
        # a library's detail text may quote the request.
        detail = f"The request could not be handled ({HTTPStatus(exc.status_code).phrase})."
    return problem_response(exc.status_code, detail, headers=exc.headers)


async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [field_error(e) for e in exc.errors()]
    where = ", ".join(dict.fromkeys(e.field for e in errors))
    return problem_response(
        422,
        f"The request is not valid; check {where}. Each problem is listed under 'errors'.",
        kind="invalid-request",
        errors=errors,
    )


def field_error(error: Mapping[str, Any]) -> FieldError:
    """One pydantic error without its `input` and `ctx`, which may hold the client's values."""
    loc = [str(part) for part in error.get("loc", ())]
    message = str(error.get("msg", "invalid"))
    # Model-level checks arrive as "Value error, <our sentence>".
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if error.get("type") == "json_invalid":
        message = "The body is not valid JSON."
    return FieldError(field=".".join(loc) or "request", message=message)


def _title(status: int, kind: str | None) -> str:
    if kind:
        return kind.replace("-", " ").capitalize()
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
