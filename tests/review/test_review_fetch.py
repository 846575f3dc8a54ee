"""Against the real Orthanc: a study found under an outside id waits in the queue; once a
staff member resolves it, exactly that study is fetched and indexed, and nothing else of
that PACS patient."""

from __future__ import annotations

import demo_studies
from fastapi.testclient import TestClient
from gateway_testkit import gateway_settings
from orthanc_server import wait_until

from gateway.app import create_app
from gateway.review import ReviewOrigin
from gateway.service import Gateway
from pacs.models import StudyQuery
from pacs.query import find_studies

OUTSIDE_ID = demo_studies.SAME_PERSON_IDS[1]  # EXT-77812: R4 patient 1003 at another provider


def test_a_resolved_study_is_fetched_and_indexed(
    tmp_path, orthanc_running, demo_catalog, gateway_scp_port, r4_url, review_decision
):
    settings = gateway_settings(
        tmp_path / "gateway",
        gateway_scp_port,
        orthanc_running,
        workers=1,
        r4_database_url=r4_url,
        pacs_id_rule_prefix="R4-",
    )
    gateway = Gateway(settings)
    mr = demo_catalog.study("dubois-ext-mr-2024")
    cbct = demo_catalog.study("dubois-ext-cbct-2023")
    # What a name query on the PACS answers: the outside id's studies, with its demographics.
    found = find_studies(settings.peer(), settings.ae_title, StudyQuery(patient_id=OUTSIDE_ID))
    study = next(s for s in found if s.study_uid == mr.study_uid)
    decision = review_decision(gateway, study.patient)
    item, _ = gateway.review.add(
        origin=ReviewOrigin.NAME_QUERY,
        pacs_name="test-orthanc",
        patient=study.patient,
        study=study,
        decision=decision,
        details=gateway.patients.details([c.r4_patient_id for c in decision.candidates]),
    )
    assert item.candidates[0].r4_patient_id == 1003
    assert gateway.index.study(mr.study_uid) is None

    with TestClient(create_app(gateway)) as client:
        _, key = client.app.state.keys.create("front-desk", "staff")
        answer = client.post(
            f"/api/v1/review/{item.id}/resolve",
            json={"r4_patient_id": 1003},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert answer.status_code == 200, answer.text
        job_id = answer.json()["follow_up_job_id"]
        assert wait_until(lambda: not gateway.jobs.get(job_id).active, 120)

    job = gateway.jobs.get(job_id)
    assert job.state == "succeeded", job.message
    assert job.message == f"Fetched 1 study, {mr.instance_count} images."
    indexed = gateway.index.study(mr.study_uid)
    assert indexed is not None and indexed.instance_count == mr.instance_count
    assert sorted(p.stem for p in gateway.index.instance_paths(mr.study_uid)) == sorted(
        mr.sop_instance_uids
    )
    # The outside id's other study (the 240-slice CBCT) was not part of the decision.
    assert gateway.index.study(cbct.study_uid) is None
    assert [s.study_uid for s in gateway.index.patient_studies(OUTSIDE_ID)] == [mr.study_uid]
    assert gateway.links.r4_patient_for(OUTSIDE_ID, demo_studies.OUTSIDE) == 1003
    assert gateway.audit.list()[0].actor == "front-desk"
