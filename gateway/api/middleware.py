"""Plain ASGI middleware (BaseHTTPMiddleware costs a task per request on the polling path).

RequestLog: one access line per request with the route *template*, never the raw path or
query string, which carry patient ids; and the last word on unexpected exceptions, logged
without their message (an SQL error's message quotes its parameters) and answered with a
500 problem.

BodyLimit: refuses bodies over the limit with 413 before anything parses them.
"""

from __future__ import annotations

import logging
import time
import traceback

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.fastpath import TEMPLATE_KEY
from gateway.api.problems import new_instance, problem_response

access_log = logging.getLogger("gateway.api.access")
error_log = logging.getLogger("gateway.api")


class RequestLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        except Exception as exc:
            instance = new_instance()
            # Frames only: the exception's text may quote request data.
            frames = "".join(traceback.format_tb(exc.__traceback__))
            error_log.error(
                "Unhandled %s in %s %s (%s)\n%s",
                type(exc).__name__,
                scope["method"],
                route_template(scope),
                instance,
                frames,
            )
            if status:  # the response already started: nothing sensible left to send
                raise
            status = 500
            response = problem_response(
                500,
                "The gateway failed to handle this request. It was logged; if it persists, "
                "give the operator the instance id.",
                kind="internal-error",
                instance=instance,
            )
            await response(scope, receive, send)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "%s %s %d %.1fms",
                    scope["method"],
                    route_template(scope),
                    status,
                    (time.perf_counter() - started) * 1000,
                )


def route_template(scope: Scope) -> str:
    """The matched route's path template, e.g. /api/v1/jobs/{job_id}; '-' when none matched."""
    if TEMPLATE_KEY in scope:  # answered by the poll fast path, before routing
        return scope[TEMPLATE_KEY]
    route = scope.get("route")
    return getattr(route, "path", None) or "-"


class BodyLimit:
    """Reads the body (at most `limit` bytes) before the app sees it.

    A declared Content-Length over the limit is refused at once; a chunked body is buffered
    up to the limit, so the app never starts on a body it would have to abandon midway."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.limit:
            await self._refuse(scope, receive, send)
            return
        if length == 0 or (length is None and not _chunked(scope)):
            await self.app(scope, receive, send)  # no body: nothing to count
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break  # client went away: let the app see the disconnect
            size += len(message.get("body", b""))
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413,
            f"The request body is larger than {self.limit // 1024} KB; "
            "a fetch request is a few hundred bytes.",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _chunked(scope: Scope) -> bool:
    return any(
        name == b"transfer-encoding" and b"chunked" in value.lower()
        for name, value in scope["headers"]
    )
