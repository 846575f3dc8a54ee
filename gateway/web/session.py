"""Page logins: an API key once, then a signed session cookie holding only the key's id.

The cookie is signed, not encrypted, so it never holds the key's secret: only its id and the
CSRF token. Every request looks the id up again, so a revoked key logs its sessions out at
their next click. The signing secret comes from `session_secret` or is generated once into
<data_dir>/session.key, so restarts and the other gateway processes on the host accept the
same cookies.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.api.auth import Permission, allowed
from gateway.core.keys import ApiKey
from gateway.core.settings import Settings

PAGES = "/ui"
COOKIE_NAME = "pgw_session"
SECRET_FILE = "session.key"
CSRF_FIELD = "csrf_token"
STATIC = f"{PAGES}/static/"


class LoginRequired(Exception):
    """No session, or its key was revoked: the login page, then back to `next_path`."""

    def __init__(self, next_path: str | None) -> None:
        super().__init__("login required")
        self.next_path = next_path


class PageForbidden(Exception):
    """The session's role may not see this page, or a form lacked its CSRF token."""

    def __init__(self, sentence: str) -> None:
        super().__init__(sentence)
        self.sentence = sentence


@dataclass(frozen=True)
class PageUser:
    key: ApiKey
    csrf: str

    @property
    def name(self) -> str:
        return self.key.name

    def may(self, permission: Permission) -> bool:
        return allowed(self.key.role, permission)


# -- the cookie ------------------------------------------------------------------------


def session_secret(settings: Settings) -> str:
    if settings.session_secret is not None:
        return settings.session_secret.get_secret_value()
    return _secret_file(settings.data_dir / SECRET_FILE)


def _secret_file(path: Path) -> str:
    """The secret in `path`, created (0600) if missing. Written to a temporary file and
    hard-linked into place: link() fails if another process got there first, and then its
    complete file is the one everyone reads."""
    with contextlib.suppress(FileNotFoundError):
        return _read_secret(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_urlsafe(48))
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return _read_secret(path)


def _read_secret(path: Path) -> str:
    secret = path.read_text(encoding="ascii").strip()
    if len(secret) < 32:
        raise ValueError(f"{path} holds no usable session secret; delete it to make a new one.")
    return secret


class PageSessions:
    """Starlette's SessionMiddleware for the pages only: API requests (bearer keys) neither
    read nor get a session cookie, and the job-polling path pays nothing for it."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.sessions = SessionMiddleware(
            app,
            secret_key=session_secret(settings),
            session_cookie=COOKIE_NAME,
            max_age=settings.session_max_age,
            path=PAGES,
            same_site="lax",
            https_only=settings.session_cookie_secure,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        # Stylesheet and script need no session (and must not refresh its cookie).
        if (path == PAGES or path.startswith(f"{PAGES}/")) and not path.startswith(STATIC):
            await self.sessions(scope, receive, send)
        else:
            await self.app(scope, receive, send)


# -- who is asking -----------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    """This session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


def begin(request: Request, key: ApiKey) -> None:
    """A fresh session for a key that just logged in (a new CSRF token too: a token planted
    before the login must not carry over)."""
    request.session.clear()
    request.session.update(key_id=key.id, csrf=secrets.token_urlsafe(32))


def end(request: Request) -> None:
    request.session.clear()


async def current_user(request: Request) -> PageUser:
    """Dependency: the logged-in key, looked up again now; LoginRequired otherwise."""
    key_id = request.session.get("key_id")
    key = None
    if isinstance(key_id, str):
        key = await run_in_threadpool(request.app.state.keys.get, key_id)
    if key is None or not key.active:
        request.session.clear()
        raise LoginRequired(local_path(_here(request)))
    user = PageUser(key, csrf_token(request))
    request.state.page_user = user  # for the error pages' menu
    return user


def permitted(user: PageUser, permission: Permission, doing: str) -> PageUser:
    if not user.may(permission):
        raise PageForbidden(
            f"Your key's role ({user.key.role}) does not allow {doing}; "
            "ask an administrator if you need to."
        )
    return user


async def checked_form(request: Request) -> FormData:
    """The POSTed form, after its CSRF token matched the session's (PageForbidden if not)."""
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    expected = request.session.get("csrf")
    if not (isinstance(sent, str) and expected and hmac.compare_digest(sent, expected)):
        raise PageForbidden(
            "This form could not be accepted: it has expired or did not come from this site. "
            "Reload the page and try again."
        )
    return form


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def local_path(value: Any) -> str | None:
    """`value` if it is a path on the pages (where a login may send people back), else None:
    never another host (`//evil`, `/\\evil`, `https:`), never outside /ui."""
    if not isinstance(value, str) or len(value) > 2000:
        return None
    if not (value == PAGES or value.startswith(f"{PAGES}/") or value.startswith(f"{PAGES}?")):
        return None
    if "\\" in value or "//" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return None
    return value
