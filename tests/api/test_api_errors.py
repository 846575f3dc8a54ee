"""Errors are problem+json everywhere; logs hold route templates, never paths, queries,
patient ids or keys; unexpected exceptions become a 500 without internals."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app

PATIENT = "PAT-SECRET-4417"


def is_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    assert body["status"] == status and body["instance"].startswith("urn:uuid:")
    return body


def test_unknown_path_is_404_problem(client, auth):
    body = is_problem(client.get(f"/api/v1/nothing/{PATIENT}", headers=auth()), 404)
    assert PATIENT not in str(body)


def test_wrong_method_is_405_problem(client, auth):
    response = client.delete("/api/v1/fetches", headers=auth())
    is_problem(response, 405)
    assert "POST" in response.headers["allow"]


def test_patient_id_is_not_in_any_problem(client, auth):
    responses = [
        client.post("/api/v1/fetches", json={"pacs_patient_id": PATIENT, "x": 1}, headers=auth()),
        client.post(
            "/api/v1/fetches", json={"pacs_patient_id": PATIENT, "pacs": "x"}, headers=auth()
        ),
        client.get(f"/api/v1/patients/{PATIENT * 10}/studies", headers=auth()),
        client.get("/api/v1/jobs", params={"pacs_patient_id": PATIENT * 10}, headers=auth()),
        client.get(f"/api/v1/jobs/{PATIENT}", headers=auth()),
    ]
    for response in responses:
        assert response.status_code >= 400
        assert PATIENT not in response.text


@pytest.fixture
def failing_client(gateway):
    app = create_app(gateway)

    @app.get("/api/v1/boom/{pacs_patient_id}")
    def boom(pacs_patient_id: str) -> None:
        raise RuntimeError(f"database said no for {pacs_patient_id}")

    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_unexpected_exception_is_500_problem_without_internals(failing_client, caplog):
    with caplog.at_level(logging.INFO, logger="gateway.api"):
        response = failing_client.get(f"/api/v1/boom/{PATIENT}")
    body = is_problem(response, 500)
    assert "RuntimeError" not in response.text and PATIENT not in response.text
    error_lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("RuntimeError" in line and body["instance"] in line for line in error_lines)
    assert PATIENT not in caplog.text  # neither the path nor the exception's text


def test_access_log_has_route_templates_only(client, auth, keys, caplog):
    with caplog.at_level(logging.INFO, logger="gateway.api.access"):
        client.get(f"/api/v1/patients/{PATIENT}/studies", headers=auth())
        client.get("/api/v1/jobs", params={"pacs_patient_id": PATIENT}, headers=auth())
        client.get(f"/api/v1/unknown/{PATIENT}", headers=auth())
        client.get("/health")
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.api.access"]
    assert lines[0].startswith("GET /api/v1/patients/{pacs_patient_id}/studies 200 ")
    assert lines[1].startswith("GET /api/v1/jobs 200 ")
    assert lines[2].startswith("GET - 404 ")
    assert lines[3].startswith("GET /health 200 ")
    assert PATIENT not in caplog.text
    assert all(key not in caplog.text for key in keys.values())
    assert "pgw_" not in caplog.text


def test_a_huge_paging_offset_is_refused_not_a_server_error(client, auth):
    # Found by the fuzzing drill: SQLite overflowed on an offset past 64 bits.
    answer = client.get("/api/v1/jobs", params={"offset": 334566094006022176768}, headers=auth())

    is_problem(answer, 422)
