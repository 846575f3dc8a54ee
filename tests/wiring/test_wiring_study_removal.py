"""Staff remove a wrongly filed study, on the API and on the job page: files, index entries
and previews gone, audited with the reason; a later fetch brings it back. Real Orthanc."""

from __future__ import annotations

import re
from html import unescape

from fastapi.testclient import TestClient
from orthanc_server import wait_until
from pytest_orthanc import PLAIN_STUDY

import jobs
from gateway.app import create_app
from gateway.fetch.request import FetchRequest
from gateway.review.audit import AuditAction, study_subject


def _fetched(gateway, study) -> jobs.Job:
    job, _ = gateway.submit_fetch(
        FetchRequest(pacs_patient_id=study.patient_id, study_uids=[study.study_uid])
    )
    assert wait_until(lambda: not gateway.jobs.get(job.id).active, 120)
    done = gateway.jobs.get(job.id)
    assert done.state == "succeeded", done.message
    return done


def _bearer(client: TestClient, role: str) -> dict[str, str]:
    _, key = client.app.state.keys.create(f"test-{role}", role)
    return {"Authorization": f"Bearer {key}"}


def test_staff_remove_a_study_and_a_later_fetch_brings_it_back(
    wired_gateway, orthanc_running, demo_catalog
):
    gateway = wired_gateway(orthanc_running)
    study = demo_catalog.study(PLAIN_STUDY)
    _fetched(gateway, study)
    uid = study.study_uid
    paths = gateway.index.instance_paths(uid)
    assert paths and all(p.is_file() for p in paths)

    client = _client(gateway)
    clinician, staff = _bearer(client, "clinician"), _bearer(client, "staff")
    preview = f"/api/v1/studies/{uid}/preview.png"
    assert client.get(preview, headers=clinician).status_code == 200
    assert (gateway.previews.root / uid).is_dir()

    refused = client.request(
        "DELETE", f"/api/v1/studies/{uid}", json={"reason": "wrong patient"}, headers=clinician
    )
    assert refused.status_code == 403
    assert "removing studies from the gateway" in refused.json()["detail"]
    no_reason = client.request(
        "DELETE", f"/api/v1/studies/{uid}", json={"reason": "   "}, headers=staff
    )
    assert no_reason.status_code == 422
    assert gateway.index.study(uid) is not None  # nothing removed by a refused request

    removed = client.request(
        "DELETE",
        f"/api/v1/studies/{uid}",
        json={"reason": "filed under the wrong patient"},
        headers=staff,
    )
    assert removed.status_code == 200, removed.text
    assert removed.json()["instance_count"] == study.instance_count

    # Gone everywhere a person could look: the API, its previews, DICOMweb.
    assert client.get(f"/api/v1/studies/{uid}", headers=clinician).status_code == 404
    assert client.get(preview, headers=clinician).status_code == 404
    assert client.get(f"/dicom-web/studies/{uid}", headers=clinician).status_code == 404
    again = client.request(
        "DELETE", f"/api/v1/studies/{uid}", json={"reason": "twice"}, headers=staff
    )
    assert again.status_code == 404
    assert again.json()["type"].endswith(":study-not-found")

    assert not any(p.exists() for p in paths)
    assert not gateway.node.store.study_dir(uid).exists()
    assert not (gateway.previews.root / uid).exists()
    assert list(gateway.node.store.incoming.iterdir()) == []
    [event] = [e for e in gateway.audit.list() if e.action == AuditAction.STUDY_REMOVED]
    assert (event.actor, event.subject) == ("test-staff", study_subject(uid))
    assert event.after == {"reason": "filed under the wrong patient", "files_removed": len(paths)}
    assert event.before["instances"] == study.instance_count

    # The PACS kept its copy: a fetch brings the study back, whole.
    _fetched(gateway, study)
    indexed = gateway.index.study(uid)
    assert indexed is not None and indexed.instance_count == study.instance_count
    assert all(p.is_file() for p in gateway.index.instance_paths(uid))


def test_the_job_page_offers_staff_the_removal_and_says_what_happened(
    wired_gateway, orthanc_running, demo_catalog
):
    gateway = wired_gateway(orthanc_running)
    study = demo_catalog.study(PLAIN_STUDY)
    job = _fetched(gateway, study)
    page = f"/ui/jobs/{job.id}"
    action = f"/ui/studies/{study.study_uid}/remove"

    client = _client(gateway)
    _login(client, "clinician")
    assert action not in client.get(page).text  # clinicians are not offered it
    answer = client.post(
        action, data={"csrf_token": _csrf(client, page), "reason": "x", "job_id": job.id}
    )
    assert answer.status_code == 403
    assert gateway.index.study(study.study_uid) is not None

    client = _client(gateway)
    _login(client, "staff")
    html = client.get(page).text
    assert action in html
    token = _csrf(client, page)
    empty = client.post(action, data={"csrf_token": token, "reason": " ", "job_id": job.id})
    assert empty.status_code == 303 and empty.headers["location"] == page
    assert "Not removed: give the reason" in unescape(client.get(page).text)
    assert gateway.index.study(study.study_uid) is not None

    done = client.post(
        action, data={"csrf_token": token, "reason": "wrong patient", "job_id": job.id}
    )
    assert done.status_code == 303
    html = unescape(client.get(page).text)
    assert "Removed: the study's images are no longer in the gateway" in html
    assert action not in html  # nothing left to remove
    assert "The gateway removed this study on " in html
    assert gateway.index.study(study.study_uid) is None
    assert not gateway.node.store.study_dir(study.study_uid).exists()


def _client(gateway) -> TestClient:
    """Outside `with`: the gateway is started already, so the app's lifespan must not run."""
    return TestClient(create_app(gateway), raise_server_exceptions=False, follow_redirects=False)


def _login(client: TestClient, role: str) -> None:
    _, key = client.app.state.keys.create(f"page-{role}", role)
    answer = client.post(
        "/ui/login", data={"csrf_token": _csrf(client, "/ui/login"), "api_key": key}
    )
    assert answer.status_code == 303, answer.text


def _csrf(client: TestClient, path: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)[1]
