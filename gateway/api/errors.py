"""Refusals of the gateway's own code as problem responses, through one table.

Each entry maps an exception class to the problem it becomes; `problem_for` walks the
exception's MRO (as starlette does for its handlers), so a subclass without an entry of its
own gets its base's problem. Routes raise and let these handlers answer: no try/except per
route. Messages of these exceptions carry no patient data, so `detail` is the message.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gateway.api.auth import KeysThrottled
from gateway.api.problems import ApiProblem, problem_response
from gateway.api.schemas import FieldError
from gateway.fetch.submit import FetchRefused, IdempotencyConflict
from gateway.index.study_index import StudyNotFound
from gateway.prefetch.day import PrefetchUnavailable
from gateway.review import (
    InvalidLinkFile,
    LinkConflict,
    LinkNotFound,
    R4Unavailable,
    ReviewAlreadyQueued,
    ReviewClosed,
    ReviewError,
    ReviewNotDismissed,
    ReviewNotFound,
    UnknownR4Patient,
)

ToProblem = Callable[[Exception], ApiProblem]


def _plain(status: int, kind: str) -> ToProblem:
    return lambda exc: ApiProblem(status, str(exc), kind=kind)


PROBLEMS: dict[type[Exception], ToProblem] = {
    # A fetch the gateway will not queue.
    FetchRefused: _plain(422, "cannot-fetch"),
    IdempotencyConflict: lambda exc: ApiProblem(
        422, f"{exc} Use a new key for a new request.", kind="idempotency-conflict"
    ),
    # Refusals of the review queue, links and link import.
    ReviewError: _plain(422, "invalid-request"),
    ReviewNotFound: _plain(404, "review-not-found"),
    LinkNotFound: _plain(404, "link-not-found"),
    ReviewClosed: _plain(409, "review-closed"),
    ReviewNotDismissed: _plain(409, "review-not-dismissed"),
    ReviewAlreadyQueued: _plain(409, "review-already-queued"),
    LinkConflict: _plain(409, "link-conflict"),
    UnknownR4Patient: lambda exc: ApiProblem(
        422,
        str(exc),
        kind="unknown-r4-patient",
        errors=[FieldError(field="body.r4_patient_id", message="no R4 patient has this id")],
    ),
    InvalidLinkFile: _plain(422, "invalid-link-file"),
    StudyNotFound: _plain(404, "study-not-found"),
    PrefetchUnavailable: _plain(422, "prefetch-unavailable"),
    KeysThrottled: lambda exc: ApiProblem(
        429, str(exc), kind="too-many-wrong-keys", headers={"Retry-After": str(exc.retry_after)}
    ),
    R4Unavailable: lambda exc: ApiProblem(
        503, str(exc), kind="r4-unavailable", headers={"Retry-After": "30"}
    ),
}


def problem_for(exc: Exception) -> ApiProblem:
    """The problem of the nearest class in `type(exc).__mro__` that has an entry."""
    for cls in type(exc).__mro__:
        to_problem = PROBLEMS.get(cls)
        if to_problem is not None:
            return to_problem(exc)
    raise LookupError(f"no problem is defined for {type(exc).__name__}")


async def refused(_request: Request, exc: Exception) -> JSONResponse:
    problem = problem_for(exc)
    return problem_response(
        problem.status,
        problem.detail,
        kind=problem.kind,
        headers=problem.headers,
        errors=problem.errors,
    )


def install(app: FastAPI) -> None:
    """One handler for each root of the table; starlette finds it along the MRO as well."""
    roots = [c for c in PROBLEMS if not any(b in PROBLEMS for b in c.__mro__[1:])]
    for root in roots:
        app.add_exception_handler(root, refused)
