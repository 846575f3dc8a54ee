"""Who saw what, in the audit trail: a viewer scrolling a study is one event, not one per frame;
the trail is searched by patient and by key; the CSV export cannot smuggle a spreadsheet formula
and holds patient ids only."""

from __future__ import annotations

import csv
import io

from gateway.review.access import REPEAT_SECONDS, AccessAudit, csv_text, find_events


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_opening_the_same_study_again_soon_is_one_event(gateway):
    clock = Clock()
    access = AccessAudit(gateway.audit, clock)
    patient = {"pacs_patient_id": "R4-1001"}

    assert access.viewed("ohif", "view.dicomweb", "study:1.2.3", patient, study_uid="1.2.3")
    for _ in range(50):  # every frame of the series
        assert not access.viewed("ohif", "view.dicomweb", "study:1.2.3", patient)
    assert access.viewed("weasis", "view.dicomweb", "study:1.2.3", patient)  # another key
    clock.now += REPEAT_SECONDS + 1
    assert access.viewed("ohif", "view.dicomweb", "study:1.2.3", patient)  # a new look

    events, total = find_events(gateway.audit, patient="R4-1001")
    assert total == 3
    assert [e.actor for e in events] == ["ohif", "weasis", "ohif"]


def test_a_lookup_that_finds_no_patient_records_nothing(gateway):
    access = AccessAudit(gateway.audit)
    assert not access.viewed("ohif", "view.study", "study:9.9", lambda: None)
    assert gateway.audit.count() == 0


def test_the_trail_is_found_by_patient_and_by_key(gateway):
    access = AccessAudit(gateway.audit)
    access.submitted("flynotes", "job-1", {"r4_patient_id": "1003", "pacs": "main"})
    access.submitted("sqs:fetch-studies", "job-2", {"pacs_patient_id": "EXT-77812"})
    access.viewed("dr-lee", "view.job", "job:job-2", {"pacs_patient_id": "EXT-77812"})

    by_patient, _ = find_events(gateway.audit, patient="EXT-77812")
    assert {(e.actor, e.action) for e in by_patient} == {
        ("sqs:fetch-studies", "fetch.submit"),
        ("dr-lee", "view.job"),
    }
    by_r4, _ = find_events(gateway.audit, patient="1003")
    assert [e.subject for e in by_r4] == ["job:job-1"]
    by_key, total = find_events(gateway.audit, actor="dr-lee", patient="EXT-77812")
    assert total == 1 and by_key[0].action == "view.job"
    # Only ids: the "pacs" parameter of the request is not a patient fact and is not kept.
    assert by_r4[0].after == {"r4_patient_id": "1003"}


def test_the_csv_keeps_formulas_as_text(gateway):
    access = AccessAudit(gateway.audit)
    access.viewed('=HYPERLINK("http://x")', "view.job", "job:1", {"pacs_patient_id": "-1+2"})
    events, _ = find_events(gateway.audit)

    rows = list(csv.DictReader(io.StringIO(csv_text(events))))

    assert rows[0]["who"] == '\'=HYPERLINK("http://x")'
    assert rows[0]["pacs_patient_id"] == "'-1+2"
    assert rows[0]["action"] == "view.job"
