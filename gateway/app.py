"""create_app(): the FastAPI application over one Gateway, which its lifespan starts and stops.

`pacs-gateway serve` runs it with uvicorn's access log off: uvicorn would log raw paths and
query strings, which carry patient ids. middleware.RequestLog logs route templates instead.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.concurrency import run_in_threadpool

from gateway.api import (
    errors,
    problems,
    routes_audit,
    routes_fetches,
    routes_health,
    routes_jobs,
    routes_links,
    routes_metrics,
    routes_prefetch,
    routes_previews,
    routes_review,
    routes_studies,
)
from gateway.api.cors import install_cors
from gateway.api.fastpath import JobPollFastPath
from gateway.api.middleware import BodyLimit, RequestLog
from gateway.api.schemas import Problem
from gateway.core.key_attempts import FailedKeyAttempts
from gateway.core.keys import KeyStore
from gateway.core.viewer_links import bind_viewer_links
from gateway.dicomweb import routes as dicomweb_routes
from gateway.service import Gateway
from gateway.web import install as install_pages

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024

_DESCRIPTION = """\
Fetches a patient's imaging studies from the PACS as background jobs.

Every route but `/health` needs an API key (`Authorization: Bearer pgw_…`, created with
`pacs-gateway keys create`). Errors are RFC 9457 problem details (`application/problem+json`).
"""


def create_app(gateway: Gateway, *, keys: KeyStore | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            gateway.start()
        except Exception as exc:
            # One sentence for the operator (the class and our message, which carry no patient
            # data); the traceback only with debug logging. uvicorn then exits 3.
            log.error("The gateway could not start: %s", _sentence(exc))
            log.debug("start-up failure", exc_info=True)
            await run_in_threadpool(gateway.stop)
            raise
        try:
            yield
        finally:
            # Waits for workers to finish or release their jobs: off the event loop.
            await run_in_threadpool(gateway.stop)

    app = FastAPI(
        title="pacs-gateway",
        version="1",
        description=_DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.gateway = gateway
    app.state.keys = keys or KeyStore(gateway.engine)
    # One count of wrong keys per client address for the API and the page login.
    app.state.key_attempts = FailedKeyAttempts(gateway.settings.failed_key_attempts_per_minute)

    problems.install(app)
    errors.install(app)
    for module in (routes_health, routes_metrics, routes_fetches, routes_jobs, routes_prefetch):
        app.include_router(module.router, responses=_ERROR_RESPONSES)
    # Study responses carry the configured viewer links (see gateway.core.viewer_links).
    app.include_router(
        routes_studies.router,
        responses=_ERROR_RESPONSES,
        dependencies=[Depends(bind_viewer_links)],
    )
    app.include_router(routes_previews.router, responses=_ERROR_RESPONSES)
    app.include_router(dicomweb_routes.router, responses=_ERROR_RESPONSES)
    # The pages for people under /ui (session login; not in the OpenAPI document).
    install_pages(app)
    # The review queue, patient links and the audit trail (staff and admin keys).
    for module in (routes_review, routes_links, routes_audit):
        app.include_router(module.router, responses=_ERROR_RESPONSES)

    # Added last = outermost: RequestLog sees (and logs) everything, 413s and fast 304s too.
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    app.add_middleware(JobPollFastPath, gateway=gateway)
    app.add_middleware(RequestLog)
    install_cors(app, gateway.settings.cors_allowed_origins)  # outermost: preflights first

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _problem_openapi(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No API key, or not a valid one."},
    403: {"model": Problem, "description": "The key's role does not allow this."},
    404: {"model": Problem, "description": "No such job or study."},
    422: {"model": Problem, "description": "The request is not valid; `errors` lists each field."},
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def _problem_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Document every error response as application/problem+json with the Problem schema,
    replacing FastAPI's HTTPValidationError, which this API never sends."""
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            for status, response in operation.get("responses", {}).items():
                if status.isdigit() and int(status) >= 400 and status != "503":
                    response["content"] = {"application/problem+json": {"schema": _PROBLEM_REF}}
    components = schema.get("components", {}).get("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    return schema


def _sentence(exc: Exception) -> str:
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
