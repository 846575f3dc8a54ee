"""Staff resolve a queued study through the API: the link is remembered, the item closed, the
action audited under the key's name, and exactly that study is fetched (or, pushed, attached)."""

from __future__ import annotations

from gateway.review import ReviewOrigin


def test_the_queue_lists_open_items_with_their_candidates(client, auth, queue_study):
    item, _ = queue_study()

    answer = client.get("/api/v1/review", headers=auth("staff"))

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["total"] == 1 and [i["id"] for i in body["items"]] == [item.id]
    listed = body["items"][0]
    assert listed["state"] == "open" and listed["origin"] == "name_query"
    assert listed["pacs_patient"]["name"] == "Okafor^Chidi"
    assert [c["r4_patient_id"] for c in listed["candidates"]] == [1005, 1006]
    assert listed["candidates"][0]["patient"]["given_name"] == "Chidi"
    assert listed["links"]["resolve"] == f"/api/v1/review/{item.id}/resolve"
    assert client.get(f"/api/v1/review/{item.id}", headers=auth("admin")).json() == listed


def test_resolve_links_closes_audits_and_fetches_exactly_that_study(
    client, auth, gateway, queue_study, twin, pacs_name
):
    item, _ = queue_study()

    answer = client.post(
        f"/api/v1/review/{item.id}/resolve", json={"r4_patient_id": 1005}, headers=auth("staff")
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["state"] == "resolved" and body["resolved_r4_patient_id"] == 1005
    assert body["closed_by"] == "test-staff" and body["closed_at"]
    # The link is remembered: the matcher now sends this PACS id straight to patient 1005.
    assert gateway.links.r4_patient_for(twin.patient_id, twin.issuer) == 1005
    assert gateway.patients.matcher().match(twin.patient()).r4_patient_id == 1005
    # A fetch job for exactly this study, on the item's PACS.
    job = gateway.jobs.get(body["follow_up_job_id"])
    assert job.params["pacs_patient_id"] == twin.patient_id
    assert job.params["study_uids"] == [twin.study_uid]
    assert job.params["pacs"] == pacs_name
    assert body["links"]["follow_up_job"] == f"/api/v1/jobs/{job.id}"
    # Audited: the item before and after, and the new link, under the key's name.
    events = client.get("/api/v1/audit", headers=auth("admin")).json()["items"]
    assert [(e["action"], e["actor"]) for e in events] == [
        ("review.resolve", "test-staff"),
        ("link.create", "test-staff"),
    ]
    resolve, link = events
    assert resolve["subject"] == f"review:{item.id}"
    assert resolve["before"]["state"] == "open" and resolve["before"]["closed_by"] is None
    assert resolve["after"]["state"] == "resolved"
    assert resolve["after"]["resolved_r4_patient_id"] == 1005
    assert link["before"] is None
    assert link["after"] == {
        "pacs_patient_id": twin.patient_id,
        "issuer": twin.issuer,
        "r4_patient_id": 1005,
        "source": "review",
        "review_item_id": item.id,
    }
    links = client.get("/api/v1/links", params={"r4_patient_id": 1005}, headers=auth()).json()
    assert [(k["pacs_patient_id"], k["source"]) for k in links["items"]] == [
        (twin.patient_id, "review")
    ]
    assert client.get("/api/v1/review", headers=auth()).json()["total"] == 0
    resolved = client.get("/api/v1/review", params={"state": "resolved"}, headers=auth()).json()
    assert [i["id"] for i in resolved["items"]] == [item.id]


def test_resolving_the_same_pacs_id_on_another_pacs_keeps_the_one_link(
    client, auth, gateway, queue_study
):
    # The same PACS patient id on two PACSes: two decisions (not siblings), one link.
    first, _ = queue_study()
    second, _ = queue_study(pacs_name="other-pacs", study_uid="1.2.826.0.1.3680043.8.498.2")

    for item in (first, second):
        answer = client.post(
            f"/api/v1/review/{item.id}/resolve", json={"r4_patient_id": 1005}, headers=auth()
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["resolved_siblings"] == []

    assert len(gateway.links.list()) == 1
    actions = [e.action for e in gateway.audit.list()]
    assert actions == ["review.resolve", "review.resolve", "link.create"]
    # Only main-pacs is configured here: its study alone is fetched.
    (job_id,) = _follow_ups(gateway)
    assert gateway.jobs.get(job_id).params["study_uids"] == [first.study_uid]


def test_a_pushed_study_is_attached_not_fetched(client, auth, gateway, queue_study, monkeypatch):
    attached = []
    monkeypatch.setattr(gateway, "attach_pushed_study", attached.append, raising=False)
    item, _ = queue_study(origin=ReviewOrigin.PUSH, pacs_name=None)

    answer = client.post(
        f"/api/v1/review/{item.id}/resolve", json={"r4_patient_id": 1006}, headers=auth()
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["follow_up_job_id"] is None
    assert [a.id for a in attached] == [item.id]
    assert attached[0].resolved_r4_patient_id == 1006
    assert gateway.jobs.list() == []


def test_dismiss_closes_with_the_reason_and_audits(client, auth, gateway, queue_study):
    item, _ = queue_study()

    answer = client.post(
        f"/api/v1/review/{item.id}/dismiss",
        json={"reason": "  Test image from the vendor's service visit  "},
        headers=auth("admin"),
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["state"] == "dismissed" and body["closed_by"] == "test-admin"
    assert body["dismiss_reason"] == "Test image from the vendor's service visit"
    assert body["follow_up_job_id"] is None and gateway.jobs.list() == []
    assert gateway.links.list() == []
    (event,) = gateway.audit.list(subject=f"review:{item.id}")
    assert event.action == "review.dismiss" and event.actor == "test-admin"
    assert event.before["state"] == "open"
    assert event.after["dismiss_reason"] == "Test image from the vendor's service visit"


def _follow_ups(gateway) -> list[str]:
    return [
        i.follow_up_job_id
        for i in gateway.review.list(state=None)
        if i.follow_up_job_id is not None
    ]


def test_the_follow_up_fetch_is_logged_as_submitted_by_the_reviewer(
    client, auth, queue_study, caplog
):
    """An operator reading the log sees who caused a fetch: here the staff key that resolved."""
    item, _ = queue_study()
    caplog.set_level("INFO", logger="jobs")

    answer = client.post(
        f"/api/v1/review/{item.id}/resolve", json={"r4_patient_id": 1005}, headers=auth("staff")
    )

    job_id = answer.json()["follow_up_job_id"]
    submitted = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("job submitted")
    ]
    assert submitted == [f"job submitted: fetch {job_id} (key_name=test-staff (review))"]
