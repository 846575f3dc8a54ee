"""A job's plan survives an upgrade: checkpoints written by earlier versions resume."""

from __future__ import annotations

from datetime import date

from gateway.fetch.plan import PlanEntry, planned_study_uids

# A plan entry as versions before PlanEntry checkpointed it (before byte counts, no "bytes").
EARLIER = {
    "study_uid": "1.2.3",
    "pacs_patient_id": "R4-1003",
    "date": "2021-04-01",
    "description": "CBCT",
    "modalities": ["CT"],
    "expected": 120,
    "received": 45,
    "done": False,
}


def test_an_earlier_checkpoint_entry_reads_back_and_keeps_its_keys():
    entry = PlanEntry.from_json(EARLIER)
    assert entry.study_uid == "1.2.3" and entry.date == date(2021, 4, 1)
    assert (entry.expected, entry.received, entry.bytes, entry.done) == (120, 45, 0, False)
    assert entry.to_json() == {**EARLIER, "bytes": 0}
    assert PlanEntry.from_json(entry.to_json()) == entry


def test_push_recovery_reads_the_planned_studies_of_any_checkpoint():
    assert planned_study_uids({}) == []
    assert planned_study_uids({"studies": [EARLIER, {"done": True}, "junk"]}) == ["1.2.3"]
