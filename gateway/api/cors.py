"""CORS for browser viewers on another origin (OHIF-style) calling /dicomweb and the API.

Invariants: off unless `cors_allowed_origins` lists origins; credentials (cookies) are never
allowed cross-origin, so the pages' session cookie cannot be used from another site: such
callers send `Authorization: Bearer <key>` themselves. Installed outermost, so preflight
requests are answered before authentication (they carry no key by design).
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

_REQUEST_HEADERS = ["Authorization", "Content-Type", "Accept", "Idempotency-Key", "If-None-Match"]
# Headers a viewer or client needs to read from responses.
_EXPOSED = ["Location", "ETag", "Retry-After", "X-Preview-Unavailable", "Content-Type"]


def install_cors(app: FastAPI, origins: list[str]) -> None:
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=_REQUEST_HEADERS,
        expose_headers=_EXPOSED,
        allow_credentials=False,
        max_age=600,
    )
