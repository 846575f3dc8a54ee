"""Fetches by R4 patient id through the matcher and the review queue, against the real Orthanc."""

from __future__ import annotations

from datetime import date

import demo_studies
from demo_practice import r4_patient_id, write_demo_practice
from orthanc_server import wait_until

import jobs
from gateway.fetch.request import FetchRequest
from gateway.review import ReviewOrigin
from r4.database import create_r4_engine
from r4.mapping import R4Mapping
from testkit.sample_data import update_patient

DUBOIS = r4_patient_id(demo_studies.SAME_PERSON_IDS[0])  # R4 patient 1003
OUTSIDE_ID = demo_studies.SAME_PERSON_IDS[1]  # EXT-77812: Dubois at Northside Radiology
TWIN = r4_patient_id(demo_studies.TWIN_IDS[0])  # Okafor Chidi; his twin is R4-1006
PATIENT_DATA = ("Dubois", "Jean-Pierre", "1975", "77812", "Okafor", "Chidi", "Chinedu")


def _finish(gateway, job: jobs.Job, timeout: float = 180) -> jobs.Job:
    finished = {s.value for s in jobs.FINISHED_STATES}
    assert wait_until(lambda: gateway.jobs.get(job.id).state in finished, timeout), (
        gateway.jobs.get(job.id)
    )
    return gateway.jobs.get(job.id)


def _fetch(gateway, **request) -> jobs.Job:
    job, _created = gateway.submit_fetch(FetchRequest(**request))
    return _finish(gateway, job)


def _uids(studies) -> set[str]:
    return {s.study_uid for s in studies}


def _assert_no_patient_data(message: str) -> None:
    for value in PATIENT_DATA:
        assert value not in message, f"{value!r} in the job message"


def test_a_fetch_by_r4_patient_brings_the_studies_under_their_rule_and_linked_ids(
    wired_gateway, orthanc_running, demo_catalog, demo_r4_url
):
    gateway = wired_gateway(orthanc_running, r4_url=demo_r4_url)
    # Staff linked the outside radiology's id to the patient earlier.
    outside = demo_catalog.patient(OUTSIDE_ID)
    gateway.links.link(OUTSIDE_ID, outside.issuer, DUBOIS, actor="staff", source="api")

    # PX and MR only, to keep the 240-slice CBCT out: one study under each kind of id.
    done = _fetch(gateway, r4_patient_id=str(DUBOIS), modalities=["PX", "MR"])

    assert done.state == "succeeded", done.message
    wanted = [
        demo_catalog.study("dubois-px-2022"),  # under R4-1003, the id rule's id
        demo_catalog.study("dubois-ext-mr-2024"),  # under EXT-77812, the linked id
    ]
    images = sum(s.instance_count for s in wanted)
    assert done.message == f"Fetched 2 studies, {images} images."
    for study in wanted:
        indexed = gateway.index.study(study.study_uid)
        assert indexed is not None and indexed.instance_count == study.instance_count
    assert gateway.review.count() == 0


def test_name_and_birth_date_finds_the_outside_studies_for_review_without_fetching_them(
    wired_gateway, orthanc_running, demo_catalog, demo_r4_url
):
    gateway = wired_gateway(orthanc_running, r4_url=demo_r4_url, match_by_demographics=True)
    own = demo_catalog.studies_for(demo_studies.SAME_PERSON_IDS[0])
    outside = demo_catalog.studies_for(OUTSIDE_ID)

    first = _fetch(gateway, r4_patient_id=str(DUBOIS))

    assert first.state == "succeeded", first.message
    assert first.message.startswith("Fetched 2 studies, 3 images. 2 studies await staff review")
    _assert_no_patient_data(first.message)
    assert first.progress["studies_in_review"] == 2
    assert _uids(gateway.index.patient_studies(demo_studies.SAME_PERSON_IDS[0])) == _uids(own)
    items = gateway.review.list()
    assert {i.study_uid for i in items} == _uids(outside)
    for item in items:
        assert item.origin is ReviewOrigin.NAME_QUERY
        # The demographics agree, yet the id is not theirs: the item says why it waits.
        assert item.why == ("found_by_name",)
        assert item.reasons[0].startswith("found by name and birth date under a PACS id")
        assert item.job_id == first.id
        assert item.pacs_patient["patient_id"] == OUTSIDE_ID
        best = item.candidates[0]
        assert best.r4_patient_id == DUBOIS
        assert best.display["family_name"] == "Dubois"
        assert best.display["birth_date"] == "1975-11-05"
        assert best.display["chart_number"] == "1003"
        # Not fetched: nothing of these studies is in the store or the index.
        assert not gateway.node.store.study_dir(item.study_uid).exists()
        assert gateway.index.study(item.study_uid) is None

    # The same fetch again: the same two items, nothing added.
    second = _fetch(gateway, r4_patient_id=str(DUBOIS))
    assert second.state == "succeeded", second.message
    assert "2 studies await staff review" in second.message
    assert gateway.review.count() == 2
    assert [i.id for i in gateway.review.list()] == [i.id for i in items]


def test_a_resolved_study_is_fetched_by_the_next_fetch_and_not_queued_again(
    wired_gateway, orthanc_running, demo_catalog, demo_r4_url
):
    gateway = wired_gateway(orthanc_running, r4_url=demo_r4_url, match_by_demographics=True)
    mr = demo_catalog.study("dubois-ext-mr-2024")
    request = {"r4_patient_id": str(DUBOIS), "modalities": ["MR"]}

    first = _fetch(gateway, **request)
    assert first.state == "needs_review", first.message  # the only MR study awaits review
    assert first.message.startswith("No study was fetched. 1 study awaits staff review")
    (item,) = gateway.review.list()
    assert item.study_uid == mr.study_uid

    resolved = gateway.resolve_review(item.id, DUBOIS, actor="staff")
    follow_up = _finish(gateway, gateway.jobs.get(resolved.follow_up_job_id))
    assert follow_up.state == "succeeded", follow_up.message

    # Retrying the job that waited for review looks again: the study is linked by now.
    retried = _finish(gateway, gateway.jobs.retry(first.id))
    assert retried.state == "succeeded", retried.message
    # The follow-up fetch brought the images already: the retry says since when.
    ready = f"Ready: 1 study ({mr.instance_count} images) already here, fetched on "
    assert retried.message.startswith(ready), retried.message

    again = _fetch(gateway, **request)
    assert again.state == "succeeded", again.message
    assert again.message.startswith(ready), again.message
    assert gateway.review.count() == 0
    assert gateway.index.study(mr.study_uid).instance_count == mr.instance_count


def test_a_fetch_whose_studies_staff_dismissed_says_so_and_fetches_nothing(
    wired_gateway, orthanc_running, demo_catalog, demo_r4_url
):
    gateway = wired_gateway(orthanc_running, r4_url=demo_r4_url, match_by_demographics=True)
    mr = demo_catalog.study("dubois-ext-mr-2024")
    request = {"r4_patient_id": str(DUBOIS), "modalities": ["MR"]}
    first = _fetch(gateway, **request)
    (item,) = gateway.review.list()
    gateway.dismiss_review(item.id, "a namesake, not our patient", "staff")

    again = _fetch(gateway, **request)

    assert first.id != again.id and again.state == "succeeded", again.message
    assert again.message == (
        "No study was fetched: staff earlier dismissed 1 study found for this patient;"
        " dismissed items can be reopened in the review queue."
    )
    assert gateway.review.count() == 0 and gateway.index.study(mr.study_uid) is None


def test_an_id_rule_hit_whose_demographics_contradict_r4_goes_to_review(
    wired_gateway, orthanc_running, demo_catalog, demo_r4_url
):
    # R4's chart number 1002 now belongs to someone else entirely: the PACS's R4-1002 is
    # not this patient, whatever the id rule says.
    engine = create_r4_engine(demo_r4_url)
    update_patient(
        engine, 1002, surname="Hargreaves", forename="Thomas", birth_date=date(1950, 2, 3), sex="M"
    )
    engine.dispose()
    gateway = wired_gateway(orthanc_running, r4_url=demo_r4_url)
    theirs = demo_catalog.studies_for(demo_studies.UTF8_PATIENT_ID)

    done = _fetch(gateway, r4_patient_id="1002")

    assert done.state == "needs_review", done.message
    assert done.message.startswith("No study was fetched. 2 studies await staff review")
    _assert_no_patient_data(done.message)
    items = gateway.review.list()
    assert {i.study_uid for i in items} == _uids(theirs)
    for item in items:
        assert item.origin is ReviewOrigin.FETCH
        assert "id_rule_contradicted" in item.why
        assert not gateway.node.store.study_dir(item.study_uid).exists()
    assert gateway.index.patient_studies(demo_studies.UTF8_PATIENT_ID) == []


def test_a_twins_studies_are_never_given_to_the_other_twin(
    wired_gateway, orthanc_running, demo_catalog, demo_r4_url
):
    gateway = wired_gateway(orthanc_running, r4_url=demo_r4_url, match_by_demographics=True)
    chidi = demo_catalog.study("okafor-chidi-px-2024")
    chinedu = demo_catalog.study("okafor-chinedu-px-2024")

    # The name query ("Okafor*", same birth date) answers both twins' studies.
    done = _fetch(gateway, r4_patient_id=str(TWIN))

    assert done.state == "succeeded", done.message
    assert done.message == f"Fetched 1 study, {chidi.instance_count} image."
    assert gateway.index.study(chidi.study_uid) is not None
    # The brother's study is his by the id rule: neither fetched nor put to review.
    assert gateway.index.study(chinedu.study_uid) is None
    assert not gateway.node.store.study_dir(chinedu.study_uid).exists()
    assert gateway.review.count() == 0


def test_an_r4_patient_without_any_way_to_find_their_studies_fails_with_a_sentence(
    wired_gateway, orthanc_running, tmp_path
):
    # The chart number in a column of its own (`[r4] chart_number`), blank for this patient.
    mapping = R4Mapping(chart_number="ChartNo")
    r4_url = write_demo_practice(tmp_path / "chart.db", mapping=mapping)
    engine = create_r4_engine(r4_url, mapping)
    update_patient(engine, 1004, chart_number=None)
    engine.dispose()
    gateway = wired_gateway(
        orthanc_running, r4_url=r4_url, r4={"chart_number": mapping.chart_number}
    )

    done = _fetch(gateway, r4_patient_id="1004")

    assert done.state == "failed"
    assert done.message.startswith(
        "The R4 patient has no chart number and no linked PACS id, so their PACS studies "
        "cannot be found"
    )
