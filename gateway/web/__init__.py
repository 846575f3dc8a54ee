"""The pages people use, under /ui: server-rendered (jinja2), a little plain JavaScript.

Login with an API key gives a signed session cookie (gateway.web.session); every form carries
a CSRF token. The pages call the same Gateway as the API and stay out of its OpenAPI document.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from gateway.web import (
    page_words,
    pages_home,
    pages_jobs,
    pages_login,
    pages_look,
    pages_prefetch,
    pages_review,
)
from gateway.web.review_access import may_manage_studies, may_review
from gateway.web.session import PAGES, LoginRequired, PageForbidden, PageSessions
from gateway.web.templating import HERE, PageNotFound, forbidden, login_required, not_found
from gateway.web.templating import templates as _templates

__all__ = ["PAGES", "ROUTERS", "install"]

# Every router of the pages (tests read the page routes from here).
ROUTERS = (
    pages_login.router,
    pages_home.router,
    pages_jobs.router,
    pages_review.router,
    pages_look.router,
    pages_prefetch.router,
    pages_jobs.legacy_router,
    pages_home.fallthrough,  # last: the 404 page for other addresses under /ui
)

_templates.env.globals["may_review"] = may_review
_templates.env.globals["may_manage_studies"] = may_manage_studies
page_words.register(_templates.env)


def install(app: FastAPI) -> None:
    """Mount the pages on the API's app (whose state holds the gateway and key store)."""
    app.mount(f"{PAGES}/static", StaticFiles(directory=HERE / "static"), name="pages-static")
    for router in ROUTERS:
        app.include_router(router)
    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(PageForbidden, forbidden)
    app.add_exception_handler(PageNotFound, not_found)
    app.add_middleware(PageSessions, settings=app.state.gateway.settings)
