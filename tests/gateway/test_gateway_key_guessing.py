"""Slowing guessers: wrong API keys from one address, over real HTTP to `pacs-gateway serve`,
sent from a second loopback address (127.0.0.2) as a guesser on the network would."""

from __future__ import annotations

import re
from html import unescape

import httpx
import pytest
from serve_process import ServeProcess

from gateway.core.database import open_database
from gateway.core.key_attempts import FailedKeyAttempts
from gateway.core.keys import KeyStore
from gateway.review import AuditLog
from gateway.review.audit import AuditAction
from testkit.gateways import closed_pacs_settings

GUESSER = "127.0.0.2"
LIMIT = 10  # the default: failed_key_attempts_per_minute
WRONG = "pgw_0123456789abcdef_" + "A" * 43


def _client(serve: ServeProcess, source: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{serve.http_port}",
        transport=httpx.HTTPTransport(local_address=source),
        timeout=10,
        follow_redirects=False,
    )


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def served(tmp_path):
    settings = closed_pacs_settings(tmp_path / "var")
    engine = open_database(settings.database_url)
    _, key = KeyStore(engine).create("flynotes", "service")
    serve = ServeProcess(settings, tmp_path)
    serve.start()
    try:
        yield serve, key, AuditLog(engine)
    finally:
        serve.stop()


def test_an_address_sending_wrong_keys_waits_and_others_do_not(served):
    serve, key, audit = served
    guesser, practice = _client(serve, GUESSER), _client(serve, "127.0.0.1")

    answers = [guesser.get("/api/v1/jobs", headers=_bearer(WRONG)) for _ in range(LIMIT)]
    assert [a.status_code for a in answers] == [401] * LIMIT

    slowed = guesser.get("/api/v1/jobs", headers=_bearer(WRONG))
    assert slowed.status_code == 429
    assert 1 <= int(slowed.headers["Retry-After"]) <= 60
    assert slowed.headers["content-type"] == "application/problem+json"
    assert "Too many wrong API keys were sent from this address" in slowed.json()["detail"]
    # While it waits, no key is checked from there: a right guess would not get through.
    assert guesser.get("/api/v1/jobs", headers=_bearer(key)).status_code == 429
    assert guesser.get("/dicomweb/studies", headers=_bearer(key)).status_code == 429
    # The page login from the same address waits too, and says so in words.
    form = guesser.get("/ui/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)[1]
    login = guesser.post("/ui/login", data={"csrf_token": token, "api_key": key})
    assert login.status_code == 429
    assert "Retry-After" in login.headers
    assert "Too many wrong keys were typed on this computer" in unescape(login.text)

    # The practice's own client, from another address, is not slowed.
    assert practice.get("/api/v1/jobs", headers=_bearer(key)).status_code == 200
    assert practice.get("/api/v1/jobs", headers=_bearer(WRONG)).status_code == 401
    assert practice.get("/api/v1/jobs", headers=_bearer(key)).status_code == 200

    [event] = [e for e in audit.list() if e.action == AuditAction.AUTH_THROTTLED]
    assert event.subject == f"address:{GUESSER}"
    assert event.after["where"] == "api" and event.after["wrong_keys"] == LIMIT
    log = serve.log_path.read_text()
    assert WRONG not in log and key not in log
    assert f"wrong API keys from {GUESSER}" in log


def test_wrong_keys_typed_at_the_page_login_count_as_well(served):
    serve, key, audit = served
    browser = _client(serve, GUESSER)
    token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/ui/login").text)[1]

    def login(api_key: str) -> httpx.Response:
        return browser.post("/ui/login", data={"csrf_token": token, "api_key": api_key})

    assert [login(f"wrong-{n}").status_code for n in range(LIMIT)] == [401] * LIMIT
    assert login(key).status_code == 429
    [event] = [e for e in audit.list() if e.action == AuditAction.AUTH_THROTTLED]
    assert event.after["where"] == "page login"
    assert _client(serve, "127.0.0.1").get("/api/v1/jobs", headers=_bearer(key)).is_success


def test_the_wait_ends_a_minute_after_the_first_of_the_wrong_keys():
    now = [1000.0]
    attempts = FailedKeyAttempts(3, 60.0, clock=lambda: now[0])
    assert [attempts.failed("10.0.0.9") for _ in range(3)] == [False, False, True]
    assert attempts.retry_after("10.0.0.9") == 60
    assert attempts.retry_after("10.0.0.8") is None
    now[0] += 59.5
    assert attempts.retry_after("10.0.0.9") == 1
    now[0] += 0.5
    assert attempts.retry_after("10.0.0.9") is None
    # Failures a minute old no longer count: one more is one, not four.
    assert attempts.failed("10.0.0.9") is False
    assert attempts.retry_after("10.0.0.9") is None


def test_a_spray_from_many_addresses_is_remembered_within_its_bound():
    attempts = FailedKeyAttempts(2, 60.0, max_addresses=100)
    for n in range(1000):
        attempts.failed(f"10.1.{n // 256}.{n % 256}")
    assert len(attempts) == 100
    # The most recent addresses are the ones remembered.
    assert attempts.failed("10.1.3.231") is True  # address 999, its second failure
