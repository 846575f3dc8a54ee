"""The queue keeps one open item per study, with what staff need to decide, and never drops
one: closing keeps it, and a dismissed study stays dismissed when it turns up again."""

from __future__ import annotations

import threading

import pytest

from gateway.matching import DecisionKind, MatchDecision
from gateway.review import ReviewOrigin, ReviewState


def test_an_item_holds_the_study_the_pacs_patient_and_ranked_candidates(
    queue_study, twin, pacs_name
):
    item, created = queue_study(job_id="job-1")

    assert created and item.state is ReviewState.OPEN
    assert item.origin is ReviewOrigin.NAME_QUERY and item.pacs_name == pacs_name
    assert item.study_uid == twin.study_uid and item.modalities == ("PX",)
    assert item.pacs_patient == {
        "patient_id": "X-55501",
        "issuer": "NORTHSIDE-RADIOLOGY",
        "name": "Okafor^Chidi",
        "birth_date": "2012-05-09",
        "sex": "M",
        "other_ids": [],
    }
    assert "possible_twin" in item.why and item.reasons
    # Both twins are offered, Chidi first, each shown with what R4 holds.
    assert [c.r4_patient_id for c in item.candidates] == [1005, 1006]
    assert item.candidates[0].score > item.candidates[1].score
    assert item.candidates[0].display == {
        "family_name": "Okafor",
        "given_name": "Chidi",
        "birth_date": "2012-05-09",
        "sex": "M",
        "chart_number": "1005",
    }
    assert item.candidates[0].reasons and item.candidates[0].birth_date_match == "exact"
    assert item.job_id == "job-1" and item.created_at.tzinfo is not None


def test_adding_the_same_open_study_again_returns_the_open_item(gateway, queue_study, twin):
    first, created = queue_study()
    again, created_again = queue_study(job_id="a-later-job")

    assert created and not created_again
    assert again.id == first.id and again.job_id is None  # the first one, unchanged
    assert gateway.review.count() == 1
    assert gateway.review.open_for_study(twin.study_uid).id == first.id


def test_the_same_study_on_another_pacs_is_another_item(gateway, queue_study):
    first, _ = queue_study()
    other, created = queue_study(pacs_name="other-pacs")

    assert created and other.id != first.id
    assert gateway.review.count() == 2


def test_a_dismissed_study_is_not_queued_again(gateway, queue_study):
    first, _ = queue_study(job_id="job-1")
    dismissed = gateway.dismiss_review(first.id, "a phantom study", "test-staff")

    # Found again by a later fetch, or pushed: staff are not asked a second time.
    again, created = queue_study(job_id="job-2")
    pushed, pushed_created = queue_study(origin=ReviewOrigin.PUSH)

    assert not created and not pushed_created
    assert again == dismissed and pushed == dismissed  # the dismissal, unchanged
    assert again.dismiss_reason == "a phantom study" and again.job_id == "job-1"
    assert gateway.review.count(ReviewState.OPEN) == 0
    assert gateway.review.count(None) == 1
    assert gateway.review.open_for_study(first.study_uid) is None


def test_a_dismissal_holds_only_for_its_study_on_its_pacs(gateway, queue_study):
    first, _ = queue_study()
    gateway.dismiss_review(first.id, "a phantom study", "test-staff")

    other_study, created = queue_study(study_uid="1.2.826.0.1.3680043.8.498.9")
    other_pacs, created_elsewhere = queue_study(pacs_name="other-pacs")

    assert created and other_study.is_open
    assert created_elsewhere and other_pacs.is_open
    assert gateway.review.count(ReviewState.OPEN) == 2


@pytest.mark.parametrize("dismissed_before", [False, True])
def test_a_decision_that_does_not_say_why_cannot_be_queued(
    gateway, queue_study, twin, pacs_name, dismissed_before
):
    if dismissed_before:
        first, _ = queue_study()
        gateway.dismiss_review(first.id, "not ours", "test-staff")
    gateway.links.link(twin.patient_id, twin.issuer, 1005, actor="test-staff", source="api")
    linked = gateway.patients.matcher().match(twin.patient())
    assert linked.auto_linked and linked.review_reasons == ()
    stored = gateway.review.list(state=None)

    # An automatic link is acted on (fetched, attached), never queued: an item without a
    # reason would leave staff guessing why it waits.
    with pytest.raises(ValueError, match="review decision with its reasons"):
        gateway.review.add(
            origin=ReviewOrigin.FETCH,
            pacs_name=pacs_name,
            patient=twin.patient(),
            study=twin.study(),
            decision=linked,
            details={},
        )

    assert gateway.review.list(state=None) == stored
    # Nor can a review decision be made without a reason to begin with.
    with pytest.raises(ValueError, match="at least one review reason"):
        MatchDecision(kind=DecisionKind.NEEDS_REVIEW, pacs_patient_id=twin.patient_id)
    with pytest.raises(ValueError, match="at least one review reason"):
        MatchDecision.review(twin.patient_id, (), ("a sentence without a code",), ())


def test_open_items_list_oldest_first_closed_ones_newest_first(gateway, queue_study):
    items = [queue_study(study_uid=f"1.2.3.{n}")[0] for n in range(4)]
    gateway.dismiss_review(items[1].id, "test image", "test-staff")
    gateway.dismiss_review(items[3].id, "test image", "test-staff")

    assert [i.id for i in gateway.review.list()] == [items[0].id, items[2].id]
    closed = gateway.review.list(state=ReviewState.DISMISSED)
    assert [i.id for i in closed] == [items[3].id, items[1].id]
    assert [i.id for i in gateway.review.list(state=None, offset=1, limit=2)] == [
        items[2].id,
        items[1].id,
    ]


def test_items_survive_a_restart(settings, queue_study):
    from gateway.service import Gateway

    item, _ = queue_study()

    reopened = Gateway(settings).review.get(item.id)

    assert reopened == item


def test_concurrent_adds_of_one_study_make_one_item(gateway, queue_study):
    barrier = threading.Barrier(4)
    results: list[tuple[int, bool]] = []

    def add() -> None:
        barrier.wait()
        item, created = queue_study()
        results.append((item.id, created))

    threads = [threading.Thread(target=add) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert len(results) == 4
    assert len({item_id for item_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert gateway.review.count() == 1
