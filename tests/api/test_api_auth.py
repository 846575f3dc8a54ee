"""Every route but the public ones refuses requests without a valid key, and each role gets
exactly what the permission table gives it. Routes are read from the app, so a new route is
covered (or fails here for lacking a requirement) without touching this file."""

from __future__ import annotations

import re

import pytest

from gateway.api.auth import PERMISSIONS, Permission, allowed
from gateway.core.keys import ROLES
from testkit.gateways import closed_pacs_settings

PUBLIC = {"/health", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"}
SAMPLE_PARAMS = {"job_id": "00000000-0000-0000-0000-000000000000", "study_uid": "1.2.3"}


@pytest.fixture
def settings(tmp_path):
    """Every route is probed with a wrong key here, from one address: more than the wrong keys
    an address may send in a minute (tests/gateway/test_gateway_key_guessing.py)."""
    return closed_pacs_settings(tmp_path / "var", failed_key_attempts_per_minute=10_000)


def protected_routes(app) -> list[tuple[str, str, Permission]]:
    """(method, url, permission) of every operation in the OpenAPI document but the public
    ones; require() puts the permission there as the operation's security scope. (The
    document is the one public, version-proof list of routes: FastAPI's app.routes now holds
    lazily included routers.) A route hidden with include_in_schema=False is not covered.)"""
    routes = []
    for path, operations in app.openapi()["paths"].items():
        if path in PUBLIC:
            continue
        url = re.sub(r"{(\w+)}", lambda m: SAMPLE_PARAMS.get(m[1], "X1"), path)
        for method, operation in operations.items():
            scopes = [s for req in operation.get("security", []) for s in req.get("HTTPBearer", [])]
            assert len(scopes) == 1, f"{method} {path} needs exactly one require(): {scopes}"
            routes.append((method.upper(), url, Permission(scopes[0])))
    return routes


def call(client, method: str, url: str, headers: dict[str, str] | None = None):
    body = {} if method in ("POST", "PUT", "PATCH") else None
    return client.request(method, url, json=body, headers=headers or {})


def assert_problem(response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["detail"] and body["title"] and body["instance"]


def test_every_permission_is_in_the_table():
    assert set(PERMISSIONS) == set(Permission)
    assert all(roles <= set(ROLES) for roles in PERMISSIONS.values())


def test_the_table_matches_the_brief():
    assert {r for r in ROLES if allowed(r, Permission.SUBMIT_FETCH)} == set(ROLES)
    assert {r for r in ROLES if allowed(r, Permission.READ)} == set(ROLES)
    assert {r for r in ROLES if allowed(r, Permission.MANAGE_JOBS)} == {"service", "staff", "admin"}


def test_the_matrix_covers_the_api(app):
    urls = {url for _, url, _ in protected_routes(app)}
    assert "/api/v1/fetches" in urls and "/ready" in urls
    assert f"/api/v1/jobs/{SAMPLE_PARAMS['job_id']}/cancel" in urls


def test_no_key_is_401_everywhere(app, client):
    for method, url, _ in protected_routes(app):
        response = call(client, method, url)
        assert_problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer", url


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer pgw_0123456789abcdef_not-the-secret",
        "Bearer not-a-key",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "pgw_0123456789abcdef_secret",
    ],
)
def test_bad_key_is_401_everywhere(app, client, authorization):
    for method, url, _ in protected_routes(app):
        assert_problem(call(client, method, url, {"Authorization": authorization}), 401)


def test_right_id_wrong_secret_is_401(app, client, keys):
    prefix, key_id, _ = keys["admin"].split("_", 2)
    forged = f"Bearer {prefix}_{key_id}_{'A' * 43}"
    for method, url, _ in protected_routes(app):
        assert_problem(call(client, method, url, {"Authorization": forged}), 401)


def test_revoked_key_is_401_everywhere(app, client, key_store):
    key, plaintext = key_store.create("to-revoke", "admin")
    headers = {"Authorization": f"Bearer {plaintext}"}
    assert client.get("/api/v1/jobs", headers=headers).status_code == 200  # now cached
    key_store.revoke(key.id)
    for method, url, _ in protected_routes(app):
        response = call(client, method, url, headers)
        assert_problem(response, 401)
        assert "invalid_token" in response.headers["www-authenticate"]


@pytest.mark.parametrize("role", ROLES)
def test_roles_get_what_the_table_gives(app, client, auth, role):
    for method, url, permission in protected_routes(app):
        response = call(client, method, url, auth(role))
        if allowed(role, permission):
            assert response.status_code not in (401, 403), (method, url, response.text)
        else:
            assert_problem(response, 403)
            assert role in response.json()["detail"]


def test_public_routes_need_no_key(client):
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200


def test_key_is_never_echoed(client, keys):
    response = client.get(
        "/api/v1/jobs/nope", headers={"Authorization": f"Bearer {keys['admin']}x"}
    )
    assert_problem(response, 401)
    assert keys["admin"] not in response.text
