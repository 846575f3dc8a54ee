"""Bad input to the review routes: a clear 4xx problem, nothing changed, the audit trail as it
was, and no patient datum (id, name, birth date) in the answer."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from gateway.review import ReviewClosed


def resolve(client, auth, item_id: int, body: object, role: str = "staff"):
    return client.post(f"/api/v1/review/{item_id}/resolve", json=body, headers=auth(role))


def dismiss(client, auth, item_id: int, body: object, role: str = "staff"):
    return client.post(f"/api/v1/review/{item_id}/dismiss", json=body, headers=auth(role))


def test_resolving_twice_is_409_saying_when_and_changes_nothing(
    client, auth, gateway, queue_study, twin, assert_problem
):
    item, _ = queue_study()
    assert resolve(client, auth, item.id, {"r4_patient_id": 1005}).status_code == 200
    audit_before = gateway.audit.list()
    jobs_before = gateway.jobs.list()

    again = resolve(client, auth, item.id, {"r4_patient_id": 1005}, role="admin")
    other = resolve(client, auth, item.id, {"r4_patient_id": 1006}, role="admin")

    for answer in (again, other):
        body = assert_problem(answer, 409, "review-closed")
        closed = gateway.review.get(item.id).closed_at
        assert f"already resolved on {closed:%Y-%m-%d at %H:%M} UTC by test-staff" in body["detail"]
    assert gateway.audit.list() == audit_before
    assert gateway.jobs.list() == jobs_before
    assert gateway.links.r4_patient_for(twin.patient_id, twin.issuer) == 1005
    assert gateway.review.get(item.id).resolved_r4_patient_id == 1005


def test_resolving_a_dismissed_item_is_409_and_changes_nothing(
    client, auth, gateway, queue_study, assert_problem
):
    item, _ = queue_study()
    assert dismiss(client, auth, item.id, {"reason": "not a patient study"}).status_code == 200
    audit_before = gateway.audit.list()

    body = assert_problem(
        resolve(client, auth, item.id, {"r4_patient_id": 1005}), 409, "review-closed"
    )
    again = dismiss(client, auth, item.id, {"reason": "twice"})

    assert "already dismissed on" in body["detail"]
    assert "already dismissed" in assert_problem(again, 409, "review-closed")["detail"]
    assert gateway.audit.list() == audit_before
    assert gateway.links.list() == [] and gateway.jobs.list() == []
    assert gateway.review.get(item.id).dismiss_reason == "not a patient study"


def test_dismissing_a_resolved_item_is_409(client, auth, gateway, queue_study, assert_problem):
    item, _ = queue_study()
    assert resolve(client, auth, item.id, {"r4_patient_id": 1005}).status_code == 200
    audit_before = gateway.audit.list()

    body = assert_problem(dismiss(client, auth, item.id, {"reason": "oops"}), 409)

    assert "already resolved" in body["detail"]
    assert gateway.audit.list() == audit_before
    assert gateway.review.get(item.id).state == "resolved"


@pytest.mark.parametrize("r4_patient_id", [4999, 2**31 - 1])
def test_linking_to_an_unknown_r4_patient_is_422_and_changes_nothing(
    client, auth, gateway, queue_study, r4_patient_id, assert_problem
):
    item, _ = queue_study()

    body = assert_problem(
        resolve(client, auth, item.id, {"r4_patient_id": r4_patient_id}),
        422,
        "unknown-r4-patient",
    )

    assert "No R4 patient has this id" in body["detail"]
    assert body["errors"] == [
        {"field": "body.r4_patient_id", "message": "no R4 patient has this id"}
    ]
    assert gateway.review.get(item.id).is_open
    assert gateway.audit.list() == [] and gateway.links.list() == [] and gateway.jobs.list() == []


def test_a_link_to_another_patient_is_409_and_the_item_stays_open(
    client, auth, gateway, queue_study, twin, assert_problem
):
    item, _ = queue_study()
    made = client.post(
        "/api/v1/links",
        json={"pacs_patient_id": twin.patient_id, "issuer": twin.issuer, "r4_patient_id": 1006},
        headers=auth(),
    )
    assert made.status_code == 201, made.text
    audit_before = gateway.audit.list()

    body = assert_problem(
        resolve(client, auth, item.id, {"r4_patient_id": 1005}), 409, "link-conflict"
    )

    assert "already linked to another R4 patient" in body["detail"]
    assert f"link {made.json()['id']}" in body["detail"]
    assert gateway.review.get(item.id).is_open
    assert gateway.links.r4_patient_for(twin.patient_id, twin.issuer) == 1006
    assert gateway.audit.list() == audit_before and gateway.jobs.list() == []


def test_an_unknown_item_is_404(client, auth, gateway, twin, assert_problem):
    for answer in (
        client.get("/api/v1/review/999", headers=auth()),
        resolve(client, auth, 999, {"r4_patient_id": 1005}),
        dismiss(client, auth, 999, {"reason": "gone"}),
    ):
        body = assert_problem(answer, 404, "review-not-found")
        assert body["detail"] == "No review item has this id; it may have been mistyped."
    assert gateway.audit.list() == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"r4_patient_id": 0},
        {"r4_patient_id": -1005},
        {"r4_patient_id": "1005x"},
        {"r4_patient_id": 2**63},
        {"r4_patient_id": None},
        {"r4_patient_id": 1005, "pacs_patient_id": "X-55501"},
        [1005],
    ],
)
def test_an_invalid_resolve_body_is_422(client, auth, gateway, queue_study, body, assert_problem):
    item, _ = queue_study()

    problem = assert_problem(resolve(client, auth, item.id, body), 422, "invalid-request")

    assert problem["errors"]
    assert gateway.review.get(item.id).is_open and gateway.audit.list() == []


@pytest.mark.parametrize(
    "body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 501}, {"reason": 5}]
)
def test_a_dismissal_needs_a_reason_of_1_to_500_characters(
    client, auth, gateway, queue_study, body, assert_problem
):
    item, _ = queue_study()

    assert_problem(dismiss(client, auth, item.id, body), 422, "invalid-request")

    assert gateway.review.get(item.id).is_open and gateway.audit.list() == []


@pytest.mark.parametrize("item_id", ["abc", "0", "-1", str(2**31), str(2**64)])
def test_an_item_id_that_cannot_exist_is_422(client, auth, item_id, assert_problem):
    assert_problem(client.get(f"/api/v1/review/{item_id}", headers=auth()), 422)


@pytest.mark.parametrize("query", [{"state": "closed"}, {"offset": 10**7}, {"limit": 0}])
def test_bad_list_parameters_are_422(client, auth, query, assert_problem):
    assert_problem(client.get("/api/v1/review", params=query, headers=auth()), 422)


@pytest.mark.parametrize("role", ["clinician", "service"])
def test_clinician_and_service_keys_get_403_on_every_review_route(
    client, auth, gateway, queue_study, role, assert_problem
):
    item, _ = queue_study()
    calls = [
        ("GET", "/api/v1/review", None),
        ("GET", f"/api/v1/review/{item.id}", None),
        ("POST", f"/api/v1/review/{item.id}/resolve", {"r4_patient_id": 1005}),
        ("POST", f"/api/v1/review/{item.id}/dismiss", {"reason": "not mine"}),
        ("GET", "/api/v1/links", None),
        ("POST", "/api/v1/links", {"pacs_patient_id": "X-1", "r4_patient_id": 1005}),
        ("GET", "/api/v1/links/1", None),
        ("DELETE", "/api/v1/links/1", None),
        ("GET", "/api/v1/audit", None),
    ]
    for method, url, body in calls:
        answer = client.request(method, url, json=body, headers=auth(role))
        problem = assert_problem(answer, 403, "forbidden")
        assert f"role ({role}) does not allow reviewing" in problem["detail"]
    csv = client.post(
        "/api/v1/links/import",
        content=b"pacs_patient_id,issuer,r4_patient_id\nX-1,,1005\n",
        headers={**auth(role), "Content-Type": "text/csv"},
    )
    assert_problem(csv, 403, "forbidden")
    assert gateway.review.get(item.id).is_open
    assert gateway.links.list() == [] and gateway.audit.list() == []


def test_no_key_is_401_on_the_review_routes(client):
    for method, url in [
        ("GET", "/api/v1/review"),
        ("POST", "/api/v1/review/1/resolve"),
        ("GET", "/api/v1/links"),
        ("POST", "/api/v1/links/import"),
        ("GET", "/api/v1/audit"),
    ]:
        answer = client.request(method, url)
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"


def test_concurrent_resolves_of_one_item_let_exactly_one_win(gateway, queue_study):
    item, _ = queue_study()
    barrier = threading.Barrier(4)
    outcomes: list[object] = []

    def resolve_as(n: int) -> None:
        barrier.wait()
        try:
            outcomes.append(gateway.resolve_review(item.id, 1005 + n % 2, f"staff-{n}"))
        except ReviewClosed as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=resolve_as, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    won = [o for o in outcomes if not isinstance(o, ReviewClosed)]
    assert len(outcomes) == 4 and len(won) == 1
    winner = won[0]
    assert gateway.review.get(item.id).closed_by == winner.closed_by
    assert [e.action for e in gateway.audit.list()] == ["review.resolve", "link.create"]
    assert [k.r4_patient_id for k in gateway.links.list()] == [winner.resolved_r4_patient_id]
    assert len(gateway.jobs.list()) == 1


def test_r4_unreachable_is_503_and_changes_nothing(
    client, auth, gateway, queue_study, monkeypatch, assert_problem
):
    item, _ = queue_study()

    def unreachable(_r4_patient_id: int) -> None:
        raise sa.exc.OperationalError("SELECT … WHERE PatientID = 1005", {}, Exception("down"))

    monkeypatch.setattr(gateway.patients, "get", unreachable)

    answer = resolve(client, auth, item.id, {"r4_patient_id": 1005})

    body = assert_problem(answer, 503, "r4-unavailable")
    assert "R4 database could not be read (OperationalError)" in body["detail"]
    assert answer.headers["retry-after"] == "30"
    assert gateway.review.get(item.id).is_open
    assert gateway.audit.list() == [] and gateway.links.list() == []
