"""A link is about the PACS patient: resolving one of their studies decides the others waiting
in the queue from the same PACS, closes them under the same name and R4 patient, and brings
all their studies in at once."""

from __future__ import annotations

from gateway.review import ReviewOrigin, ReviewState

UID = "1.2.826.0.1.3680043.8.498."


def test_resolving_one_study_resolves_the_patients_other_open_studies(
    client, auth, gateway, queue_study, twin, monkeypatch
):
    attached = []
    monkeypatch.setattr(gateway, "attach_pushed_study", attached.append, raising=False)
    first, _ = queue_study(study_uid=UID + "1")
    second, _ = queue_study(study_uid=UID + "2", origin=ReviewOrigin.FETCH)
    pushed, _ = queue_study(study_uid=UID + "3", origin=ReviewOrigin.PUSH)
    # Not the same PACS patient: another PACS, another issuer, another id.
    elsewhere, _ = queue_study(study_uid=UID + "4", pacs_name="other-pacs")
    other_issuer, _ = queue_study(study_uid=UID + "5", issuer="SOUTHSIDE-CLINIC")
    stranger, _ = queue_study(study_uid=UID + "6", patient_id="X-99999")

    answer = client.post(
        f"/api/v1/review/{first.id}/resolve", json={"r4_patient_id": 1005}, headers=auth()
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["resolved_siblings"] == [second.id, pushed.id]
    for sibling in (second, pushed):
        shown = client.get(f"/api/v1/review/{sibling.id}", headers=auth()).json()
        assert shown["state"] == "resolved" and shown["resolved_r4_patient_id"] == 1005
        assert shown["closed_by"] == "test-staff"
    # One fetch job for both studies that are still on the PACS; the pushed one is attached.
    job = gateway.jobs.get(body["follow_up_job_id"])
    assert job.params["study_uids"] == sorted([first.study_uid, second.study_uid])
    assert job.params["pacs_patient_id"] == twin.patient_id
    assert [j.id for j in gateway.jobs.list()] == [job.id]
    assert gateway.review.get(second.id).follow_up_job_id == job.id
    assert gateway.review.get(pushed.id).follow_up_job_id is None
    assert [a.id for a in attached] == [pushed.id]
    assert attached[0].state is ReviewState.RESOLVED
    # Each sibling audited on its own, naming the item it followed from.
    for sibling in (second, pushed):
        (event,) = gateway.audit.list(subject=f"review:{sibling.id}")
        assert event.action == "review.resolve" and event.actor == "test-staff"
        assert event.before["state"] == "open"
        assert event.after["state"] == "resolved"
        assert event.after["resolved_r4_patient_id"] == 1005
        assert event.after["followed_from"] == first.id
        assert f"review item {first.id}" in event.after["note"]
    (event,) = gateway.audit.list(subject=f"review:{first.id}")
    assert "followed_from" not in event.after
    assert len(gateway.links.list()) == 1
    assert {i.id for i in gateway.review.list()} == {elsewhere.id, other_issuer.id, stranger.id}


def test_studies_without_a_pacs_patient_id_are_decided_one_by_one(
    client, auth, gateway, queue_study
):
    first, _ = queue_study(study_uid=UID + "1", patient_id="")
    second, _ = queue_study(study_uid=UID + "2", patient_id="")

    answer = client.post(
        f"/api/v1/review/{first.id}/resolve", json={"r4_patient_id": 1005}, headers=auth()
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["resolved_siblings"] == []
    assert [i.id for i in gateway.review.list()] == [second.id]
    assert gateway.links.list() == []


def test_a_sibling_closed_before_keeps_its_own_decision(client, auth, gateway, queue_study):
    first, _ = queue_study(study_uid=UID + "1")
    dismissed, _ = queue_study(study_uid=UID + "2")
    gateway.dismiss_review(dismissed.id, "test image", "test-admin")

    answer = client.post(
        f"/api/v1/review/{first.id}/resolve", json={"r4_patient_id": 1005}, headers=auth()
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["resolved_siblings"] == []
    assert gateway.review.get(dismissed.id).state is ReviewState.DISMISSED
    job = gateway.jobs.get(answer.json()["follow_up_job_id"])
    assert job.params["study_uids"] == [first.study_uid]
