"""No page content without a session, for every page route the app has (read from the app, so
a new page is covered without touching this file); roles; the session cookie's flags and
secret; pages stay out of the API's OpenAPI document."""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from orthanc_server import free_port

from gateway.app import create_app
from gateway.core.keys import ROLES
from gateway.core.settings import Settings
from gateway.fetch.request import FetchRequest
from gateway.service import Gateway
from gateway.web import ROUTERS
from gateway.web.session import COOKIE_NAME, SECRET_FILE, local_path
from testkit.gateways import closed_pacs_settings

PUBLIC_PAGES = {"/ui/login", "/ui/fallback"}  # the fallback procedure: for when all else fails
SAMPLE = {"job_id": "00000000-0000-0000-0000-000000000000", "item_id": "1", "kind": "thumbnail"}


@pytest.fixture
def settings(tmp_path) -> Settings:
    return closed_pacs_settings(tmp_path / "var", connect_timeout=0.5)


@pytest.fixture
def app(settings) -> FastAPI:
    return create_app(Gateway(settings))


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as c:
        yield c


@pytest.fixture
def keys(app) -> dict[str, str]:
    return {role: app.state.keys.create(f"sec-{role}", role)[1] for role in ROLES}


def page_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, url) of every route under /ui, sample values in its path parameters (from
    gateway.web.ROUTERS: FastAPI's app.routes holds included routers lazily)."""
    found = []
    for route in (r for router in ROUTERS for r in router.routes):
        if isinstance(route, APIRoute) and route.path.startswith("/ui"):
            url = re.sub(r"{(\w+)}", lambda m: SAMPLE.get(m[1], "1.2.3"), route.path)
            found += [(method, url) for method in sorted(route.methods - {"HEAD"})]
    return found


def login(client: TestClient, key: str) -> None:
    form = client.get("/ui/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)[1]
    answer = client.post("/ui/login", data={"csrf_token": token, "api_key": key})
    assert answer.status_code == 303, answer.text


def csrf(client: TestClient, path: str = "/ui/fetch") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)[1]


def test_the_route_list_covers_the_pages(app, client):
    urls = {url for _, url in page_routes(app)}
    for method, url in page_routes(app):  # and the app serves each one
        assert client.request(method, url).status_code != 404, url
    assert {"/ui/", "/ui/jobs", "/ui/fetch", "/ui/review", "/ui/audit"} <= urls
    assert f"/ui/jobs/{SAMPLE['job_id']}/status" in urls


def test_without_a_session_every_page_sends_to_the_login_and_shows_nothing(app, client):
    gateway: Gateway = app.state.gateway
    gateway.submit_fetch(FetchRequest(pacs_patient_id="SECRET-PATIENT-7"))
    checked = 0
    for method, url in page_routes(app):
        if url in PUBLIC_PAGES:
            continue
        answer = client.request(method, url, data={"patient_id": "X"} if method == "POST" else None)
        checked += 1
        assert answer.status_code == 303, (method, url, answer.status_code)
        assert answer.headers["location"].startswith("/ui/login"), (method, url)
        assert answer.content == b"", (method, url)
    assert checked >= 10
    # The script's poll gets a 401 with where to log in, no job data.
    answer = client.get(
        f"/ui/jobs/{SAMPLE['job_id']}/status", headers={"Accept": "application/json"}
    )
    assert answer.status_code == 401 and set(answer.json()) == {"detail", "login"}


def test_a_forged_or_foreign_cookie_is_no_session(app, client, keys, tmp_path):
    client.cookies.set(COOKIE_NAME, "eyJrZXlfaWQiOiAiMDAwMCJ9.forged.signature", path="/ui")
    assert client.get("/ui/jobs").status_code == 303
    # A cookie signed by another gateway's secret is not accepted either.
    other = create_app(
        Gateway(Settings(data_dir=tmp_path / "other", dicom_port=free_port(), workers=0, pacs=[]))
    )
    with TestClient(other, follow_redirects=False) as stranger:
        key = other.state.keys.create("other", "admin")[1]
        login(stranger, key)
        foreign = stranger.cookies.get(COOKIE_NAME)
    client.cookies.clear()
    client.cookies.set(COOKIE_NAME, foreign, path="/ui")
    assert client.get("/ui/jobs").status_code == 303


def test_the_session_cookie_is_httponly_lax_scoped_and_the_secret_private(
    app, client, keys, settings
):
    form = client.get("/ui/login")
    cookie = form.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/ui" in cookie
    assert "secure" not in cookie  # session_cookie_secure is off by default (plain http)
    secret = settings.data_dir / SECRET_FILE
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    # A second app on the same data dir (a restart, another process) accepts the cookie.
    login(client, keys["clinician"])
    again = create_app(Gateway(settings.model_copy(update={"dicom_port": free_port()})))
    with TestClient(again, follow_redirects=False) as restarted:
        restarted.cookies.set(COOKIE_NAME, client.cookies.get(COOKIE_NAME), path="/ui")
        assert restarted.get("/ui/jobs").status_code == 200


def test_the_secure_flag_follows_the_setting(settings):
    secure = settings.model_copy(update={"session_cookie_secure": True, "dicom_port": free_port()})
    with TestClient(create_app(Gateway(secure)), follow_redirects=False) as c:
        assert "secure" in c.get("/ui/login").headers["set-cookie"].lower()


def test_api_requests_get_no_session_cookie(client, keys):
    answer = client.get("/api/v1/jobs", headers={"Authorization": f"Bearer {keys['clinician']}"})
    assert answer.status_code == 200 and "set-cookie" not in answer.headers
    assert client.get("/ui/static/pages.css").headers.get("set-cookie") is None


@pytest.mark.parametrize("role", ["service", "clinician"])
def test_roles_without_review_get_a_403_page_on_the_staff_pages(client, keys, role):
    login(client, keys[role])
    for url in ("/ui/review", "/ui/review/1", "/ui/audit"):
        answer = client.get(url)
        assert answer.status_code == 403, url
        assert "does not allow reviewing" in answer.text
    token = csrf(client)
    answer = client.post("/ui/review/1/dismiss", data={"csrf_token": token, "reason": "x"})
    assert answer.status_code == 403


def test_every_post_needs_the_sessions_csrf_token(app, client, keys):
    login(client, keys["admin"])
    for method, url in page_routes(app):
        if method != "POST" or url == "/ui/login":
            continue
        for token in (None, "wrong"):
            data = {"csrf_token": token} if token else {}
            answer = client.post(url, data=data)
            assert answer.status_code == 403, (url, token)
            assert "could not be accepted" in answer.text
    assert client.get("/ui/jobs").status_code == 200  # still logged in: nothing was done


def test_the_login_form_needs_its_token_too(client, keys):
    client.get("/ui/login")  # a session with a token exists; the form just does not carry it
    answer = client.post("/ui/login", data={"api_key": keys["admin"]})
    assert answer.status_code == 403
    assert client.get("/ui/jobs").status_code == 303  # not logged in


def test_pages_are_not_in_the_api_document(app):
    assert not [p for p in app.openapi()["paths"] if p.startswith("/ui") or p == "/jobs/{job_id}"]


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("/ui/jobs/1", True),
        ("/ui?x=1", True),
        ("/ui/", True),
        ("//evil.example", False),
        ("/\\evil.example", False),
        ("https://evil.example/ui/", False),
        ("/ui//evil.example", False),
        ("/api/v1/jobs", False),
        ("/ui/\nSet-Cookie:x", False),
        (None, False),
    ],
)
def test_only_local_page_paths_are_followed_after_login(value, kept):
    assert local_path(value) == (value if kept else None)


def test_an_unknown_page_is_a_404_page_and_pages_refuse_framing(client, keys):
    assert client.get("/ui/no/such/page").status_code == 303  # who asks comes first
    login(client, keys["clinician"])
    answer = client.get("/ui/no/such/page")
    assert answer.status_code == 404
    assert "There is no page at this address" in answer.text
    assert "Log out" in answer.text  # the logged-in menu, on error pages too
    policy = answer.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy
    assert answer.headers["cache-control"] == "no-store"
