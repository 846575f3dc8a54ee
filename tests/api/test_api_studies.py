"""Studies from the index: by patient, by UID."""

from __future__ import annotations

from datetime import date

import pytest

from pacs.models import Instance, PacsPatient, Study

PATIENT = "PAT-9001"
UID = "1.2.826.0.1.3680043.8.498.1"


@pytest.fixture
def indexed(gateway) -> None:
    study = Study(
        study_uid=UID,
        patient=PacsPatient(patient_id=PATIENT),
        study_date=date(2024, 3, 1),
        description="CBCT upper jaw",
        modalities=("CT",),
    )
    instances = [Instance(UID, f"{UID}.{s}", f"{UID}.{s}.{i}") for s in (1, 2) for i in (1, 2, 3)]
    sizes = {i.sop_instance_uid: 1000 for i in instances}
    gateway.index.record_study("main-pacs", study, instances, sizes, job_id="job-1")


def test_patient_studies(client, auth, indexed):
    response = client.get(f"/api/v1/patients/{PATIENT}/studies", headers=auth("clinician"))
    assert response.status_code == 200
    body = response.json()
    assert body["pacs_patient_id"] == PATIENT
    [study] = body["studies"]
    assert (study["study_uid"], study["date"], study["modalities"]) == (UID, "2024-03-01", ["CT"])
    assert (study["instance_count"], study["bytes"], study["series"]) == (6, 6000, None)
    assert study["links"] == {
        "self": f"/api/v1/studies/{UID}",
        "job": "/api/v1/jobs/job-1",
        "preview": f"/api/v1/studies/{UID}/preview.png",
        "viewers": [],
    }


def test_patient_without_studies_is_an_empty_list(client, auth):
    response = client.get("/api/v1/patients/NOBODY/studies", headers=auth())
    assert response.json() == {"pacs_patient_id": "NOBODY", "studies": []}


def test_study_by_uid_has_its_series(client, auth, indexed):
    body = client.get(f"/api/v1/studies/{UID}", headers=auth()).json()
    assert body["description"] == "CBCT upper jaw"
    assert sorted((s["series_uid"], s["instance_count"]) for s in body["series"]) == [
        (f"{UID}.1", 3),
        (f"{UID}.2", 3),
    ]


def test_unknown_study_is_404(client, auth):
    response = client.get("/api/v1/studies/1.2.3.4", headers=auth())
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("uid", ["abc", "1..2", "1.02.3", "1.2.", "1", "1.2.3-4", "1." + "2" * 70])
def test_malformed_uid_is_422(client, auth, uid):
    response = client.get(f"/api/v1/studies/{uid}", headers=auth())
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "path.study_uid"
    if len(uid) > 3:
        assert uid not in response.text
