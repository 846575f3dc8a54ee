"""A dismissal holds until staff take it back: reopening puts the item in the queue again,
audited, and only a dismissed item can be reopened."""

from __future__ import annotations

import pytest

from gateway.review import ReviewOrigin, ReviewState


def _reopen(client, auth, item_id: int, role: str = "staff"):
    return client.post(f"/api/v1/review/{item_id}/reopen", headers=auth(role))


def test_reopening_a_dismissed_item_puts_it_back_in_the_queue(client, auth, gateway, queue_study):
    item, _ = queue_study()
    dismissed = client.post(
        f"/api/v1/review/{item.id}/dismiss", json={"reason": "looked wrong"}, headers=auth()
    ).json()
    assert dismissed["links"]["reopen"] == f"/api/v1/review/{item.id}/reopen"

    answer = _reopen(client, auth, item.id, "admin")

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["state"] == "open" and body["links"]["reopen"] is None
    assert body["closed_at"] is None and body["closed_by"] is None
    assert body["dismiss_reason"] is None
    assert [i.id for i in gateway.review.list()] == [item.id]
    # Open again, it holds its study as any open item does.
    again, created = queue_study()
    assert not created and again.id == item.id and again.is_open
    (event, _dismissal) = gateway.audit.list(subject=f"review:{item.id}")
    assert event.action == "review.reopen" and event.actor == "test-admin"
    assert event.before["state"] == "dismissed"
    assert event.before["dismiss_reason"] == "looked wrong"
    assert event.after["state"] == "open" and event.after["dismiss_reason"] is None
    # And it can be decided anew.
    resolved = gateway.resolve_review(item.id, 1005, "test-staff")
    assert resolved.state is ReviewState.RESOLVED


@pytest.mark.parametrize("closing", ["open", "resolved"])
def test_only_a_dismissed_item_can_be_reopened(
    client, auth, gateway, queue_study, assert_problem, closing
):
    item, _ = queue_study()
    if closing == "resolved":
        gateway.resolve_review(item.id, 1005, "test-staff")

    answer = _reopen(client, auth, item.id)

    body = assert_problem(answer, 409, "review-not-dismissed")
    assert closing in body["detail"]
    assert gateway.review.get(item.id).state.value == closing
    assert all(e.action != "review.reopen" for e in gateway.audit.list())


def test_reopen_is_refused_while_another_open_item_holds_the_study(
    client, auth, gateway, queue_study, assert_problem, monkeypatch
):
    item, _ = queue_study()
    gateway.dismiss_review(item.id, "not ours", "test-staff")
    # An item queued for the same study while the dismissal did not hold (as before
    # dismissals held); the dismissed item may not open beside it.
    with monkeypatch.context() as patched:
        patched.setattr(gateway.review, "_dismissed", lambda pacs_name, study_uid: None)
        holder, created = queue_study(origin=ReviewOrigin.FETCH)
    assert created and holder.is_open and holder.id != item.id

    answer = _reopen(client, auth, item.id)

    body = assert_problem(answer, 409, "review-already-queued")
    assert f"Review item {holder.id}" in body["detail"]
    assert gateway.review.get(item.id).state is ReviewState.DISMISSED


def test_reopen_needs_a_reviewer_and_an_existing_item(
    client, auth, gateway, queue_study, assert_problem
):
    item, _ = queue_study()
    gateway.dismiss_review(item.id, "not ours", "test-staff")

    assert_problem(_reopen(client, auth, item.id, "clinician"), 403)
    assert_problem(_reopen(client, auth, 999_999), 404, "review-not-found")
    assert gateway.review.get(item.id).state is ReviewState.DISMISSED
