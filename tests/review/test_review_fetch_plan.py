"""What a fetch by R4 patient makes of the PACS's answers, against a stand-in PACS: studies
found only by name wait for a person and say why; a study staff dismissed is left alone until
its PACS patient is linked."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from gateway.fetch.plan import FetchMatching, FetchPlan
from gateway.fetch.request import FetchRequest, FetchTarget
from gateway.matching import ReviewReason, reason_sentence
from gateway.practice.side import id_rule
from gateway.review import ReviewOrigin, ReviewState
from pacs.models import Peer, Study, StudyQuery

DUBOIS = 1003  # R4 chart number 1003: the id rule gives PACS id R4-1003
PERSON = {"name": "Dubois^Jean-Pierre", "birth_date": date(1975, 11, 5), "sex": "M"}


@pytest.fixture
def own(twin):
    """A study of R4 patient 1003 under the id-rule id R4-1003."""
    return replace(
        twin, patient_id="R4-1003", issuer="", study_uid="1.2.826.0.1.3680043.8.498.10", **PERSON
    )


@pytest.fixture
def outside(twin):
    """The same person at an outside provider: only the name query finds it."""
    return replace(
        twin,
        patient_id="EXT-77812",
        issuer="NORTHSIDE-RADIOLOGY",
        study_uid="1.2.826.0.1.3680043.8.498.11",
        description="MR head",
        modalities=("MR",),
        **PERSON,
    )


class StandInPacs:
    """Answers C-FIND like a PACS holding `studies`: by PatientID, or by a "Name*" pattern on
    the family or given name together with the birth date."""

    def __init__(self, *studies: Study) -> None:
        self.studies = studies

    def __call__(
        self, peer: Peer, calling_aet: str, query: StudyQuery, *, on_foreign: object = None
    ) -> list[Study]:
        if query.patient_id:
            return [s for s in self.studies if s.patient.patient_id == query.patient_id]
        prefix = query.patient_name.rstrip("*").lower()
        return [
            s
            for s in self.studies
            if s.patient.birth_date == query.birth_date
            and any(
                part.lower().startswith(prefix)
                for part in (s.patient.name.family, s.patient.name.given)
            )
        ]


@pytest.fixture
def plan(gateway, settings, pacs_name):
    """`plan(*pacs, job_id=...)`: a name-and-id fetch for R4 patient 1003 on a PACS holding
    these patients' studies (conftest.Pacs)."""

    def run(*held, job_id: str = "job-1") -> FetchPlan:
        matching = FetchMatching(
            gateway.patients,
            gateway.review,
            gateway.links,
            id_rule(settings),
            by_demographics=True,
            find=StandInPacs(*(p.study() for p in held)),
        )
        request = FetchRequest(r4_patient_id=str(DUBOIS))
        target = FetchTarget.resolve(settings, request)
        return matching.plan(target, settings.ae_title, job_id)

    return run


def _uids(studies: list[Study]) -> list[str]:
    return [s.study_uid for s in studies]


def test_a_study_found_only_by_name_says_why_even_when_the_demographics_agree(
    gateway, plan, own, outside
):
    # Name, birth date and sex all agree: the matcher alone would link it to 1003.
    assert gateway.patients.matcher().match(outside.patient()).auto_linked

    found = plan(own, outside)

    assert _uids(found.fetch) == [own.study_uid] and found.in_review == 1
    (item,) = gateway.review.list()
    assert item.origin is ReviewOrigin.NAME_QUERY and item.study_uid == outside.study_uid
    assert item.why == (ReviewReason.FOUND_BY_NAME.value,)
    assert item.reasons[0] == reason_sentence(ReviewReason.FOUND_BY_NAME)
    assert item.reasons[0] == (
        "found by name and birth date under a PACS id not linked to this patient; a person "
        "must confirm"
    )
    assert [c.r4_patient_id for c in item.candidates] == [DUBOIS]


def test_a_name_query_hit_keeps_the_matchers_own_reasons_after_found_by_name(
    gateway, plan, own, outside
):
    doubtful = replace(outside, sex="F")

    found = plan(own, doubtful)

    assert found.in_review == 1
    (item,) = gateway.review.list()
    assert item.why[0] == "found_by_name" and "sex_differs" in item.why
    assert item.reasons[0] == reason_sentence(ReviewReason.FOUND_BY_NAME)
    assert reason_sentence(ReviewReason.SEX_DIFFERS) in item.reasons


def test_a_dismissed_study_is_neither_fetched_nor_counted_as_awaiting_review(
    gateway, plan, own, outside
):
    plan(own, outside)
    (item,) = gateway.review.list()
    dismissed = gateway.dismiss_review(item.id, "another Jean-Pierre Dubois", "test-staff")

    again = plan(own, outside, job_id="job-2")

    assert _uids(again.fetch) == [own.study_uid]
    assert again.in_review == 0 and again.newly_queued == 0 and again.dismissed == 1
    assert gateway.review.count(ReviewState.OPEN) == 0
    assert gateway.review.list(state=None) == [dismissed]  # no new item, the old one as it was


def test_a_dismissed_study_is_fetched_once_staff_link_its_patient(gateway, plan, own, outside):
    plan(own, outside)
    (item,) = gateway.review.list()
    gateway.dismiss_review(item.id, "not sure yet", "test-staff")
    gateway.links.link(outside.patient_id, outside.issuer, DUBOIS, actor="test", source="api")

    again = plan(own, outside, job_id="job-2")

    assert _uids(again.fetch) == [own.study_uid, outside.study_uid]
    assert again.in_review == 0 and again.dismissed == 0
    assert gateway.review.count(ReviewState.OPEN) == 0
    assert gateway.review.get(item.id).state is ReviewState.DISMISSED  # kept as the record


def test_a_resolved_study_is_fetched_by_the_next_fetch_not_queued(gateway, plan, own, outside):
    plan(own, outside)
    (item,) = gateway.review.list()
    gateway.resolve_review(item.id, DUBOIS, "test-staff")

    again = plan(own, outside, job_id="job-2")

    assert _uids(again.fetch) == [own.study_uid, outside.study_uid]
    assert again.in_review == 0
    assert gateway.review.count(None) == 1


def test_a_study_under_a_linked_id_from_another_issuer_says_why_it_waits(
    gateway, plan, own, outside
):
    # Staff linked the outside id as another issuer of patient ids gave it; the PACS files
    # the study under the same id from NORTHSIDE-RADIOLOGY. The link does not apply, and the
    # demographics alone would link the study to 1003.
    gateway.links.link(outside.patient_id, "SOUTHSIDE-CLINIC", DUBOIS, actor="test", source="api")
    assert gateway.patients.matcher().match(outside.patient()).auto_linked

    found = plan(own, outside)

    assert _uids(found.fetch) == [own.study_uid] and found.in_review == 1
    (item,) = gateway.review.list()
    assert item.origin is ReviewOrigin.FETCH and item.study_uid == outside.study_uid
    assert item.why == (ReviewReason.ISSUER_DIFFERS.value,)
    assert item.reasons[0] == reason_sentence(ReviewReason.ISSUER_DIFFERS)
    assert item.reasons[0] == (
        "found under a PACS id linked to this patient, but from another issuer of patient "
        "ids; a person must confirm"
    )
    assert [c.r4_patient_id for c in item.candidates] == [DUBOIS]


def test_every_queued_item_says_why_it_needs_a_person(gateway, plan, own, outside):
    gateway.links.link(outside.patient_id, "SOUTHSIDE-CLINIC", DUBOIS, actor="test", source="api")
    doubtful = replace(outside, study_uid="1.2.826.0.1.3680043.8.498.12", sex="F")
    by_name = replace(
        outside, patient_id="EXT-99", study_uid="1.2.826.0.1.3680043.8.498.13", issuer=""
    )

    plan(own, outside, doubtful, by_name)

    items = gateway.review.list()
    assert len(items) == 3
    assert all(item.why and len(item.reasons) >= len(item.why) for item in items)
    known = {r.value for r in ReviewReason}
    assert all(set(item.why) <= known for item in items)
