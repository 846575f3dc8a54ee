"""Bearer API keys and the one table of which role may do what.

Routes declare what they need with `Depends(require(Permission.X))`; later routers (review
queue, pages) reuse `require` and, when they need a new permission, add a row to PERMISSIONS.
"""

import logging
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from gateway.api.problems import ApiProblem
from gateway.core.key_attempts import FailedKeyAttempts
from gateway.core.keys import ApiKey, KeyStore
from gateway.review.audit import AuditAction

log = logging.getLogger(__name__)


class Permission(StrEnum):
    SUBMIT_FETCH = "submit_fetch"
    READ = "read"  # jobs, studies, readiness
    MANAGE_JOBS = "manage_jobs"  # cancel, retry
    REVIEW = "review"  # the review queue, patient links, the audit trail
    MANAGE_STUDIES = "manage_studies"  # remove a wrongly filed study; mark one to be kept


ALL_ROLES = frozenset({"service", "clinician", "staff", "admin"})

PERMISSIONS: Mapping[Permission, frozenset[str]] = {
    Permission.SUBMIT_FETCH: ALL_ROLES,
    Permission.READ: ALL_ROLES,
    # Clinicians watch jobs; stopping or re-running them is for staff and the R4 service.
    Permission.MANAGE_JOBS: frozenset({"service", "staff", "admin"}),
    # Deciding whose images a study holds is a person's job, and shows patient details.
    Permission.REVIEW: frozenset({"staff", "admin"}),
    # Whose images a study holds, again: removing one is staff's decision, audited.
    Permission.MANAGE_STUDIES: frozenset({"staff", "admin"}),
}

# Words for the 403 sentence.
_DOING: Mapping[Permission, str] = {
    Permission.SUBMIT_FETCH: "requesting fetches",
    Permission.READ: "reading jobs and studies",
    Permission.MANAGE_JOBS: "cancelling or retrying jobs",
    Permission.REVIEW: "reviewing unmatched studies, patient links and the audit trail",
    Permission.MANAGE_STUDIES: "removing studies from the gateway or marking them to be kept",
}

_bearer = HTTPBearer(
    auto_error=False,  # our own 401 problem instead of FastAPI's
    description="An API key from `pacs-gateway keys create`, sent as `Bearer pgw_…`.",
)


def allowed(role: str, permission: Permission) -> bool:
    return role in PERMISSIONS[permission]


class Requirement:
    """What `require()` returns: a dependency that authenticates the caller and checks one
    permission. The permission is also the operation's security scope in the OpenAPI document
    (`security: [{HTTPBearer: [manage_jobs]}]`), which documents it for clients and lets the
    tests find every protected route and what it needs."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

        # A function built here rather than a method: FastAPI reads the scope from the
        # signature, and it differs per permission.
        async def check(
            request: Request,
            credentials: Annotated[
                HTTPAuthorizationCredentials | None,
                Security(_bearer, scopes=[permission.value]),
            ],
        ) -> ApiKey:
            return await self.authorize(request, credentials)

        self.dependency = check

    async def authorize(
        self, request: Request, credentials: HTTPAuthorizationCredentials | None
    ) -> ApiKey:
        if credentials is None:
            raise _unauthorized(
                "This request needs an API key: send 'Authorization: Bearer <key>'."
            )
        check_not_throttled(request)
        keys: KeyStore = request.app.state.keys
        # A cache hit costs no thread hop; a miss reads the database off the event loop.
        hit, key = keys.cached(credentials.credentials)
        if not hit:
            key = await run_in_threadpool(keys.authenticate, credentials.credentials)
        if key is None:
            await count_failure(request, "api")
            raise _unauthorized(
                "The API key is not valid: it is unknown, mistyped or revoked.", invalid=True
            )
        if not allowed(key.role, self.permission):
            raise ApiProblem(
                403,
                f"Your API key's role ({key.role}) does not allow {_DOING[self.permission]}; "
                "ask an administrator for a key with a role that does.",
                kind="forbidden",
            )
        request.state.api_key = key
        return key


class KeysThrottled(Exception):
    """Too many wrong keys came from this client address; `retry_after` seconds to wait."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "Too many wrong API keys were sent from this address in the last minute; "
            f"no key is checked from it for {retry_after} s. Check the key you use."
        )
        self.retry_after = retry_after


def client_address(request: Request) -> str:
    """The caller's address (a local reverse proxy's X-Forwarded-For is applied by uvicorn)."""
    return request.client.host if request.client is not None else "unknown"


def check_not_throttled(request: Request) -> None:
    """Raises KeysThrottled while the caller's address must wait (see key_attempts)."""
    attempts: FailedKeyAttempts = request.app.state.key_attempts
    wait = attempts.retry_after(client_address(request))
    if wait is not None:
        raise KeysThrottled(wait)


async def count_failure(request: Request, where: str) -> None:
    """One wrong key from the caller's address; the one that makes it wait is audited (so at
    most one event per address a minute) and logged, with the address and never the key."""
    attempts: FailedKeyAttempts = request.app.state.key_attempts
    address = client_address(request)
    if not attempts.failed(address):
        return
    log.warning(
        "%d wrong API keys from %s within %.0f s (%s): its key checks wait a minute",
        attempts.limit,
        address,
        attempts.window,
        where,
    )
    await run_in_threadpool(
        request.app.state.gateway.audit.record,
        f"address:{address}",
        AuditAction.AUTH_THROTTLED,
        f"address:{address}",
        None,
        {"where": where, "wrong_keys": attempts.limit, "within_seconds": attempts.window},
    )


def require(permission: Permission) -> Any:
    """`Depends(require(Permission.X))`'s argument: a dependency returning the caller's ApiKey
    after checking that its role may do X (401 / 403 problems otherwise)."""
    return Requirement(permission).dependency


def _unauthorized(detail: str, *, invalid: bool = False) -> ApiProblem:
    challenge = 'Bearer error="invalid_token"' if invalid else "Bearer"
    return ApiProblem(401, detail, kind="unauthorized", headers={"WWW-Authenticate": challenge})
