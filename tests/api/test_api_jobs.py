"""Reading, polling, listing, cancelling and retrying jobs. No workers run: the tests move jobs
through their states with the job store's own worker calls."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

PATIENT = "PAT-5512"


@pytest.fixture
def job(client, auth) -> dict:
    response = client.post("/api/v1/fetches", json={"pacs_patient_id": PATIENT}, headers=auth())
    assert response.status_code == 202
    return response.json()


def url(job: dict, suffix: str = "") -> str:
    return f"/api/v1/jobs/{job['id']}{suffix}"


def run_to(gateway, job_id: str, end: str) -> None:
    """Claim the job as a fake worker and end it the way `end` says."""
    store = gateway.jobs
    claimed = store.claim("test-worker", ["fetch"], 30)
    assert claimed is not None and claimed.id == job_id
    if end == "running":
        return
    if end == "failed":
        store.fail(job_id, "test-worker", "PACS refused the query", error="refused")
    elif end == "succeeded":
        store.succeed(job_id, "test-worker", "Fetched 1 study, 3 images.")
    elif end == "waiting_retry":
        at = store.now() + timedelta(seconds=42)
        store.schedule_retry(job_id, "test-worker", at, "PACS unreachable", "unreachable")


def test_get_job_has_etag_and_retry_after_while_queued(client, auth, job):
    response = client.get(url(job), headers=auth("clinician"))
    assert response.status_code == 200
    assert response.headers["etag"] == '"1"'
    assert response.headers["retry-after"] == "2"
    assert response.headers["cache-control"] == "private, no-cache"
    body = response.json()
    assert body["state"] == "queued" and body["message"] == "Queued"
    assert body["progress"]["studies_total"] == 0
    assert set(body["links"]) == {"self", "cancel", "retry", "events", "page"}


def test_if_none_match_gives_304_without_body(client, auth, job):
    etag = client.get(url(job), headers=auth()).headers["etag"]
    response = client.get(url(job), headers={**auth(), "If-None-Match": etag})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag and response.headers["retry-after"] == "2"
    weak = client.get(url(job), headers={**auth(), "If-None-Match": f'"x", W/{etag}'})
    assert weak.status_code == 304


def test_a_change_invalidates_the_etag(client, auth, gateway, job):
    etag = client.get(url(job), headers=auth()).headers["etag"]
    run_to(gateway, job["id"], "running")
    response = client.get(url(job), headers={**auth(), "If-None-Match": etag})
    assert response.status_code == 200
    assert response.headers["etag"] != etag and response.json()["state"] == "running"


def test_progress_and_studies_come_from_the_job(client, auth, gateway, job):
    run_to(gateway, job["id"], "running")
    study = {
        "study_uid": "1.2.3.4",
        "pacs_patient_id": PATIENT,
        "date": "2024-03-01",
        "description": "CBCT",
        "modalities": ["CT"],
        "expected": 120,
        "received": 45,
        "bytes": 1000,
        "done": False,
    }
    gateway.jobs.report(
        job["id"],
        "test-worker",
        message="Fetching study 1 of 1: 45 of 120 images",
        progress={
            "studies_total": 1,
            "studies_done": 0,
            "instances_expected": 120,
            "instances_received": 45,
            "instances_failed": 0,
            "bytes": 1000,
        },
        checkpoint={"studies": [study]},
    )
    body = client.get(url(job), headers=auth()).json()
    assert body["message"] == "Fetching study 1 of 1: 45 of 120 images"
    assert body["progress"]["instances_received"] == 45
    assert body["studies"] == [
        {
            "study_uid": "1.2.3.4",
            "date": "2024-03-01",
            "description": "CBCT",
            "modalities": ["CT"],
            "expected": 120,
            "received": 45,
            "done": False,
        }
    ]


def test_waiting_retry_says_when_to_poll(client, auth, gateway, job):
    run_to(gateway, job["id"], "waiting_retry")
    response = client.get(url(job), headers=auth())
    body = response.json()
    assert body["state"] == "waiting_retry" and body["next_attempt_at"]
    assert 1 <= int(response.headers["retry-after"]) <= 42


def test_finished_job_has_no_retry_after(client, auth, gateway, job):
    run_to(gateway, job["id"], "succeeded")
    response = client.get(url(job), headers=auth())
    assert response.json()["state"] == "succeeded" and "retry-after" not in response.headers


def test_unknown_job_is_404(client, auth):
    for suffix in ("", "/events"):
        response = client.get(f"/api/v1/jobs/no-such-job{suffix}", headers=auth())
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert "no-such-job" not in response.text
    for action in ("cancel", "retry"):
        assert client.post(f"/api/v1/jobs/no-such-job/{action}", headers=auth()).status_code == 404


def test_cancel_a_queued_job(client, auth, job):
    response = client.post(url(job, "/cancel"), headers=auth("staff"))
    assert response.status_code == 200
    assert response.json()["state"] == "cancelled" and response.json()["active"] is False
    again = client.post(url(job, "/cancel"), headers=auth("staff"))
    assert again.status_code == 200 and again.json()["state"] == "cancelled"


def test_cancel_a_running_job_asks_its_worker(client, auth, gateway, job):
    run_to(gateway, job["id"], "running")
    body = client.post(url(job, "/cancel"), headers=auth()).json()
    assert body["state"] == "running" and body["cancel_requested"] is True


def test_cancel_a_finished_job_is_409(client, auth, gateway, job):
    run_to(gateway, job["id"], "succeeded")
    response = client.post(url(job, "/cancel"), headers=auth())
    assert response.status_code == 409
    assert response.json()["detail"] == "This job cannot be cancelled: it has already succeeded."


def test_retry_a_failed_job_queues_it(client, auth, gateway, job):
    run_to(gateway, job["id"], "failed")
    response = client.post(url(job, "/retry"), headers=auth("admin"))
    assert response.status_code == 200
    body = response.json()
    assert (body["state"], body["attempts"], body["error"]) == ("queued", 0, None)


def test_retry_a_cancelled_job_queues_it(client, auth, job):
    client.post(url(job, "/cancel"), headers=auth())
    assert client.post(url(job, "/retry"), headers=auth()).json()["state"] == "queued"


def test_retry_an_active_job_is_409(client, auth, job):
    response = client.post(url(job, "/retry"), headers=auth())
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"].startswith("This job cannot be retried: it is still queued.")


def test_retry_while_the_same_request_is_active_again_is_409(client, auth, job):
    client.post(url(job, "/cancel"), headers=auth())
    newer = client.post("/api/v1/fetches", json={"pacs_patient_id": PATIENT}, headers=auth())
    assert newer.status_code == 202
    response = client.post(url(job, "/retry"), headers=auth())
    assert response.status_code == 409
    assert "another job for the same request is active" in response.json()["detail"]


def test_events_list_the_history(client, auth, job):
    client.post(url(job, "/cancel"), headers=auth())
    events = client.get(url(job, "/events"), headers=auth("clinician")).json()
    assert [(e["state"], e["message"]) for e in events] == [
        ("queued", "Queued"),
        ("cancelled", "Cancelled"),
    ]


def test_list_filters_by_patient_and_state(client, auth):
    def submit(body):
        return client.post("/api/v1/fetches", json=body, headers=auth()).json()["id"]

    a = submit({"pacs_patient_id": "A-1"})
    b = submit({"pacs_patient_id": "A-1", "date_from": "2020-01-01"})
    c = submit({"pacs_patient_id": "B-2"})
    client.post(f"/api/v1/jobs/{b}/cancel", headers=auth())

    def ids(**params):
        response = client.get("/api/v1/jobs", params=params, headers=auth("clinician"))
        assert response.status_code == 200, response.text
        return [j["id"] for j in response.json()["items"]]

    assert ids(pacs_patient_id="A-1") == [b, a]  # newest first
    assert ids(pacs_patient_id="A-1", state="queued") == [a]
    assert ids(state=["queued", "cancelled"]) == [c, b, a]
    assert ids(pacs_patient_id="nobody") == []
    assert ids(r4_patient_id="A-1") == []
    assert ids(limit=1) == [c] and ids(limit=1, offset=1) == [b]


@pytest.mark.parametrize(
    "params", [{"state": "exploded"}, {"limit": 0}, {"limit": 10_000}, {"offset": -1}]
)
def test_list_refuses_bad_filters(client, auth, params):
    response = client.get("/api/v1/jobs", params=params, headers=auth())
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"].startswith("query.")


# -- the poll fast path (gateway.api.fastpath) answers 304s before routing -------------------


def test_fast_path_never_skips_auth(client, auth, key_store, job):
    etag = client.get(url(job), headers=auth()).headers["etag"]
    match = {"If-None-Match": etag}
    assert client.get(url(job), headers=match).status_code == 401
    assert client.get(url(job), headers={**match, "Authorization": "Bearer x"}).status_code == 401
    key, plaintext = key_store.create("poller", "clinician")
    bearer = {**match, "Authorization": f"Bearer {plaintext}"}
    assert client.get(url(job), headers=bearer).status_code == 304  # cold cache: normal route
    assert client.get(url(job), headers=bearer).status_code == 304  # warm cache: fast path
    key_store.revoke(key.id)
    response = client.get(url(job), headers=bearer)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


def test_fast_path_falls_through_when_the_job_changed(client, auth, gateway, job):
    etag = client.get(url(job), headers=auth()).headers["etag"]
    client.post(url(job, "/cancel"), headers=auth())
    response = client.get(url(job), headers={**auth(), "If-None-Match": etag})
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    gone = client.get("/api/v1/jobs/nope", headers={**auth(), "If-None-Match": "*"})
    assert gone.status_code == 404


def test_fast_path_304_carries_retry_after_and_is_logged_by_template(
    client, auth, gateway, job, caplog
):
    run_to(gateway, job["id"], "waiting_retry")
    etag = client.get(url(job), headers=auth()).headers["etag"]
    with caplog.at_level(logging.INFO, logger="gateway.api.access"):
        response = client.get(url(job), headers={**auth(), "If-None-Match": etag})
    assert response.status_code == 304 and response.content == b""
    assert response.headers["etag"] == etag
    assert 1 <= int(response.headers["retry-after"]) <= 42
    assert response.headers["cache-control"] == "private, no-cache"
    [line] = [r.getMessage() for r in caplog.records if r.name == "gateway.api.access"]
    assert line.startswith("GET /api/v1/jobs/{job_id} 304 ")
    assert job["id"] not in caplog.text
