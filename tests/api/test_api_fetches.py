"""POST /api/v1/fetches: created, deduplicated, idempotent; bad input refused, nothing stored."""

from __future__ import annotations

import json

import pytest

PATIENT = "PAT-7734021"
FETCH = {"pacs_patient_id": PATIENT, "date_from": "2024-01-01", "date_to": "2024-12-31"}


def post(client, auth, body, role="service", **headers):
    return client.post("/api/v1/fetches", json=body, headers={**auth(role), **headers})


def test_submit_creates_a_job(client, auth, settings):
    response = post(client, auth, {**FETCH, "modalities": ["ct", "PX"]})
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/api/v1/jobs/{job['id']}"
    assert response.headers["etag"] == '"1"'
    assert (job["kind"], job["state"], job["active"]) == ("fetch", "queued", True)
    assert job["request"]["pacs_patient_id"] == PATIENT
    assert job["request"]["pacs"] == settings.pacs[0].name  # the default PACS, named
    assert job["request"]["modalities"] == ["CT", "PX"]
    assert job["links"]["self"] == response.headers["location"]
    assert job["links"]["page"] == f"/jobs/{job['id']}"
    assert client.get(job["links"]["self"], headers=auth()).json()["id"] == job["id"]


def test_same_request_while_active_returns_the_same_job(client, auth):
    first = post(client, auth, FETCH)
    again = post(client, auth, FETCH, role="clinician")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == first.headers["location"]


def test_idempotency_key_replays_the_first_job_even_after_it_ended(client, auth, gateway):
    first = post(client, auth, FETCH, **{"Idempotency-Key": "req-1"})
    job_id = first.json()["id"]
    gateway.jobs.request_cancel(job_id)  # no longer active: dedupe alone would make a new job
    replay = post(client, auth, FETCH, **{"Idempotency-Key": "req-1"})
    assert replay.status_code == 200
    assert replay.json()["id"] == job_id and replay.json()["state"] == "cancelled"
    fresh = post(client, auth, FETCH, **{"Idempotency-Key": "req-2"})
    assert fresh.status_code == 202 and fresh.json()["id"] != job_id


def test_idempotency_key_with_another_body_is_422(client, auth, gateway):
    post(client, auth, FETCH, **{"Idempotency-Key": "req-1"})
    other = post(client, auth, {**FETCH, "date_to": "2024-06-30"}, **{"Idempotency-Key": "req-1"})
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert "Idempotency-Key" in other.json()["detail"]
    assert len(gateway.jobs.list()) == 1


def test_idempotency_keys_belong_to_one_api_key(client, auth):
    first = post(client, auth, FETCH, **{"Idempotency-Key": "shared"})
    other = post(
        client, auth, {**FETCH, "date_to": "2024-06-30"}, "staff", **{"Idempotency-Key": "shared"}
    )
    assert other.status_code == 202 and other.json()["id"] != first.json()["id"]


BAD_BODIES = {
    "malformed date": {**FETCH, "date_from": "2024-13-45"},
    "date as text": {**FETCH, "date_to": "last tuesday"},
    "reversed range": {**FETCH, "date_from": "2024-12-31", "date_to": "2024-01-01"},
    "both patient ids": {**FETCH, "r4_patient_id": PATIENT},
    "neither patient id": {"date_from": "2024-01-01"},
    "empty patient id": {"pacs_patient_id": ""},
    "patient id too long": {"pacs_patient_id": PATIENT * 10},
    "extra field": {**FETCH, "patient_name": "DOE^JANE"},
    "bad modality": {**FETCH, "modalities": ["C T"]},
    "study uid not a uid": {**FETCH, "study_uids": ["../1.2.3"]},
    "study uid too long": {**FETCH, "study_uids": ["1." * 40]},
    "unknown PACS": {**FETCH, "pacs": "nowhere"},
    "by R4 id without matching": {"r4_patient_id": PATIENT},
    # One patient means one patient: C-FIND would read these as wildcards or a value list.
    "every patient": {"pacs_patient_id": "*"},
    "a prefix wildcard": {**FETCH, "pacs_patient_id": "PAT-773*"},
    "a one-character wildcard": {**FETCH, "pacs_patient_id": "PAT-773402?"},
    "a value list": {**FETCH, "pacs_patient_id": f"{PATIENT}\\PAT-1"},
    "blank after trimming": {"pacs_patient_id": "  \t "},
    "a wildcard R4 id": {"r4_patient_id": "10*"},
    "not an object": [PATIENT],
}


@pytest.mark.parametrize("case", BAD_BODIES)
def test_bad_input_is_a_problem_and_stores_nothing(client, auth, gateway, case):
    response = post(client, auth, BAD_BODIES[case])
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422 and problem["detail"].endswith(".")
    assert PATIENT not in response.text and "DOE" not in response.text
    assert gateway.jobs.list() == []


def test_validation_errors_name_fields(client, auth):
    problem = post(client, auth, {**FETCH, "date_from": "2024-13-45", "extra": 1}).json()
    fields = {e["field"] for e in problem["errors"]}
    assert fields == {"body.date_from", "body.extra"}
    assert all(e["message"] for e in problem["errors"])


@pytest.mark.parametrize("value", ["*", "PAT-773*", "PAT-773402?", "A\\B"])
def test_a_wildcard_patient_id_is_refused_naming_the_field(client, auth, value):
    problem = post(client, auth, {"pacs_patient_id": value}).json()
    assert problem["errors"] == [
        {
            "field": "body.pacs_patient_id",
            "message": "the value must not contain the DICOM matching characters * ? or \\",
        }
    ]


def test_reversed_range_says_why(client, auth):
    problem = post(client, auth, BAD_BODIES["reversed range"]).json()
    assert problem["errors"] == [{"field": "body", "message": "date_from is after date_to"}]


def test_unknown_pacs_names_the_configured_ones(client, auth, settings):
    problem = post(client, auth, BAD_BODIES["unknown PACS"]).json()
    assert "nowhere" in problem["detail"] and settings.pacs[0].name in problem["detail"]


def test_malformed_json_is_422(client, auth, gateway):
    response = client.post(
        "/api/v1/fetches",
        content=b'{"pacs_patient_id": "PAT-7734021",',
        headers={**auth(), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert PATIENT not in response.text
    assert gateway.jobs.list() == []


def test_body_over_64_kb_is_413_before_parsing(client, auth, gateway):
    big = json.dumps({**FETCH, "padding": "x" * 100_000}).encode()
    response = client.post(
        "/api/v1/fetches", content=big, headers={**auth(), "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert gateway.jobs.list() == []


def test_chunked_body_over_64_kb_is_413(client, auth, gateway):
    def chunks():
        yield b'{"pacs_patient_id": "P1", "padding": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    response = client.post(
        "/api/v1/fetches", content=chunks(), headers={**auth(), "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert gateway.jobs.list() == []


def test_small_chunked_body_is_accepted(client, auth):
    def chunks():
        yield b'{"pacs_patient_id": '
        yield b'"P1"}'

    response = client.post(
        "/api/v1/fetches", content=chunks(), headers={**auth(), "Content-Type": "application/json"}
    )
    assert response.status_code == 202, response.text


def test_idempotency_key_too_long_is_422(client, auth, gateway):
    response = post(client, auth, FETCH, **{"Idempotency-Key": "k" * 300})
    assert response.status_code == 422
    assert gateway.jobs.list() == []
