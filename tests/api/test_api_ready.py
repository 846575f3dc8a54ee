"""Readiness asks every PACS at once: with several PACS down, /ready (and the dashboard, which
shows the same checks) answers after about one PACS timeout, not one per PACS."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from orthanc_server import free_port

from gateway.app import create_app
from gateway.core.settings import PacsSettings, Settings
from gateway.service import Gateway

# A PACS that takes connections and never answers waits out the whole association timeout.
ACSE_TIMEOUT = 2.0


@pytest.fixture
def silent_ports() -> Iterator[list[int]]:
    """Two listening sockets that never accept: the kernel completes the TCP handshake, then
    nothing answers the association request (a deterministic slow PACS)."""
    sockets = []
    for _ in range(2):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        sockets.append(s)
    yield [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()


@pytest.fixture
def slow_gateway(tmp_path, silent_ports) -> Gateway:
    pacs = [
        PacsSettings(
            name=name,
            ae_title="NOBODY",
            host="127.0.0.1",
            port=port,
            connect_timeout=1.0,
            acse_timeout=ACSE_TIMEOUT,
        )
        for name, port in zip(("first-pacs", "second-pacs"), silent_ports, strict=True)
    ]
    settings = Settings(
        data_dir=tmp_path / "var",
        dicom_port=free_port(),
        dicom_bind="127.0.0.1",
        workers=0,
        pacs=pacs,
    )
    return Gateway(settings)


def test_two_silent_pacs_cost_one_timeout_not_two(slow_gateway):
    started = time.perf_counter()
    readiness = slow_gateway.readiness()
    elapsed = time.perf_counter() - started

    # In settings order, after the database and storage, each PACS failed on its own.
    assert list(readiness.checks) == ["database", "storage", "pacs:first-pacs", "pacs:second-pacs"]
    assert readiness.checks["database"].ok and readiness.checks["storage"].ok
    for name in ("pacs:first-pacs", "pacs:second-pacs"):
        check = readiness.checks[name]
        assert not check.ok and check.latency_ms is None
        assert "did not complete a DICOM association" in check.detail
    assert not readiness.ok
    # Each waited out its timeout; one after the other would take twice as long.
    assert ACSE_TIMEOUT * 0.9 <= elapsed < ACSE_TIMEOUT * 1.6, elapsed


def test_ready_answers_after_one_timeout_with_every_check(slow_gateway):
    with TestClient(create_app(slow_gateway), raise_server_exceptions=False) as client:
        _, key = client.app.state.keys.create("probe", "service")
        started = time.perf_counter()
        answer = client.get("/ready", headers={"Authorization": f"Bearer {key}"})
        elapsed = time.perf_counter() - started

    # The PACS being down does not stop this process serving job polls: 200, "degraded".
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "degraded"
    assert list(body["checks"]) == ["database", "storage", "pacs:first-pacs", "pacs:second-pacs"]
    assert [c["ok"] for c in body["checks"].values()] == [True, True, False, False]
    assert elapsed < ACSE_TIMEOUT * 1.6, elapsed


def test_ready_is_503_only_when_this_process_cannot_serve(tmp_path):
    settings = Settings(
        data_dir=tmp_path / "var", dicom_port=free_port(), dicom_bind="127.0.0.1", workers=0
    )
    gateway = Gateway(settings)
    with TestClient(create_app(gateway), raise_server_exceptions=False) as client:
        _, key = client.app.state.keys.create("probe", "service")
        headers = {"Authorization": f"Bearer {key}"}
        assert client.get("/ready", headers=headers).json()["status"] == "ready"
        # The store's incoming folder replaced by a file: nothing can be received any more.
        incoming = gateway.node.store.incoming
        incoming.rmdir()
        incoming.write_bytes(b"")
        try:
            answer = client.get("/ready", headers=headers)
        finally:
            incoming.unlink()
            incoming.mkdir()
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "not_ready"
    assert not body["checks"]["storage"]["ok"] and body["checks"]["database"]["ok"]


def test_r4_outage_is_reported_in_the_body_not_as_503(tmp_path):
    settings = Settings(
        data_dir=tmp_path / "var",
        dicom_port=free_port(),
        dicom_bind="127.0.0.1",
        workers=0,
        # Nothing listens there: the connection is refused at once.
        r4_database_url=f"postgresql+psycopg://r4:secret@127.0.0.1:{free_port()}/sys2000",
    )
    gateway = Gateway(settings)
    with TestClient(create_app(gateway), raise_server_exceptions=False) as client:
        _, key = client.app.state.keys.create("probe", "service")
        answer = client.get("/ready", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "degraded"
    r4 = body["checks"]["r4"]
    assert not r4["ok"] and r4["detail"].startswith("Could not connect to the R4 database")
    assert "secret" not in answer.text
