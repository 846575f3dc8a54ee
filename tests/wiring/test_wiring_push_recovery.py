"""Pushed studies a crash kept from being matched are found, and matched, at the next start.

The crash is real: `pacs-gateway serve` is SIGKILLed after storescu's push has landed and while
its matching waits for R4, which the test holds locked (SQLite, so matching cannot finish
first: no sleep decides the order).
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import demo_studies
import pytest
from gateway_testkit import gateway_settings
from orthanc_server import HOST, wait_until
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from serve_process import ServeProcess
from wiring_senders import MODALITY_AET, push, storescu

from gateway.core.settings import PacsSettings, Settings
from gateway.fetch.request import FetchRequest
from gateway.pushes.receiver import UNKNOWN_SENDER
from gateway.pushes.recovery import find_unmatched
from gateway.review import ReviewState
from gateway.service import Gateway
from pacs.store import StudyStore

ID_RULE = {"pacs_id_rule_prefix": "R4-"}
OUTSIDE_ID = demo_studies.SAME_PERSON_IDS[1]


@pytest.fixture
def serves() -> Iterator[list[ServeProcess]]:
    running: list[ServeProcess] = []
    yield running
    for process in running:
        process.kill()


@contextmanager
def _r4_locked(r4_url: str) -> Iterator[None]:
    """An exclusive lock on the demo R4 (SQLite): every reader waits until it is released."""
    conn = sqlite3.connect(r4_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield
    finally:
        conn.close()  # rolls back: the lock is gone


def _relabelled(study, patient_id: str) -> list[Dataset]:
    """The study's files under another PatientID and fresh uids (a twin's: never automatic)."""
    study_uid = generate_uid(entropy_srcs=["recovery", study.key, patient_id])
    datasets = []
    for path in study.files:
        ds = dcmread(path)
        ds.PatientID = patient_id
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = generate_uid(entropy_srcs=[study_uid, ds.SeriesInstanceUID])
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[study_uid, ds.SOPInstanceUID])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        datasets.append(ds)
    return datasets


def _stored(store: StudyStore, study_uid: str) -> list[Path]:
    return sorted(store.study_dir(study_uid).glob("*/*.dcm"))


def _review_states(gateway: Gateway) -> list[tuple[int, str, ReviewState]]:
    return [(i.id, i.study_uid, i.state) for i in gateway.review.list(state=None)]


def test_a_push_cut_off_by_a_crash_is_matched_at_the_next_start_and_an_interrupted_fetch_is_not(
    tmp_path, gateway_scp_port, orthanc_running, demo_catalog, demo_r4_url, serves, caplog
):
    settings = gateway_settings(
        tmp_path / "gw",
        gateway_scp_port,
        orthanc_running,
        workers=1,
        lease_seconds=3.0,
        # Readers of a locked R4 wait up to 10 minutes, not SQLite's default 5 s.
        r4_database_url=f"{demo_r4_url}?timeout=600",
        **ID_RULE,
    )
    submitter = Gateway(settings)  # not started: reads the database the processes share
    store = submitter.node.store
    pushed = demo_catalog.study("muller-io-2021")  # R4-1001: the id rule links it
    fetched = demo_catalog.study("dubois-ext-cbct-2023")

    first = ServeProcess(settings, tmp_path, "first")
    serves.append(first)
    first.start()
    with _r4_locked(demo_r4_url):
        # Every file is in the store once storescu returns; matching waits for R4.
        storescu(pushed.files, gateway_scp_port, orthanc_running.ae_title)
        job, _ = submitter.submit_fetch(FetchRequest(pacs_patient_id=OUTSIDE_ID, modalities=["CT"]))
        assert wait_until(
            lambda: submitter.jobs.get(job.id).progress.get("instances_received", 0) >= 40, 60
        ), first.log_tail()
        first.kill()

    # The gap: the push's files are kept, but nobody would ever see them.
    assert len(_stored(store, pushed.study_uid)) == pushed.instance_count
    assert submitter.index.study(pushed.study_uid) is None
    assert submitter.review.count(state=None) == 0
    assert submitter.jobs.get(job.id).state == "running"
    assert 40 <= len(_stored(store, fetched.study_uid)) < fetched.instance_count
    # What a start finds: the push, not the study the interrupted fetch will finish.
    assert find_unmatched(store.root, submitter.engine, submitter.jobs) == [pushed.study_uid]

    second = ServeProcess(settings, tmp_path, "second")
    serves.append(second)
    second.start()
    assert wait_until(lambda: submitter.index.study(pushed.study_uid) is not None, 30), (
        second.log_tail()
    )
    assert wait_until(lambda: submitter.jobs.get(job.id).state == "succeeded", 120), (
        submitter.jobs.get(job.id),
        second.log_tail(),
    )
    assert second.stop()

    indexed = submitter.index.study(pushed.study_uid)
    assert indexed.pacs_name == "test-orthanc"  # the sender noted when the push landed
    assert indexed.pacs_patient_id == demo_studies.LATIN1_PATIENT_ID
    assert indexed.instance_count == pushed.instance_count
    assert indexed.job_id is None
    assert submitter.index.study(fetched.study_uid).job_id == job.id
    assert submitter.index.study(fetched.study_uid).instance_count == fetched.instance_count
    assert submitter.review.count(state=None) == 0  # the fetched study was never a push item
    log = second.log_tail(400)
    assert "received but never matched (the gateway stopped first): 1 study" in log
    assert pushed.study_uid in log
    assert fetched.study_uid not in log
    assert list(submitter.pushes.marks.directory.iterdir()) == []

    # A start with nothing new does nothing.
    fetched_at = {
        uid: submitter.index.study(uid).fetched_at for uid in (pushed.study_uid, fetched.study_uid)
    }
    caplog.set_level(logging.INFO, logger="gateway")
    third = Gateway(settings)
    third.start(workers=0)
    try:
        assert third.pushes.wait_idle(10)
    finally:
        third.stop(timeout=5)
    assert not [r for r in caplog.records if r.name.startswith("gateway.push")]
    assert {uid: submitter.index.study(uid).fetched_at for uid in fetched_at} == fetched_at
    assert submitter.review.count(state=None) == 0


def test_indexed_and_reviewed_studies_are_left_alone_and_a_study_without_sender_is_found(
    tmp_path, gateway_scp_port, orthanc_running, demo_catalog, demo_r4_url, caplog
):
    settings = gateway_settings(
        tmp_path / "gw",
        gateway_scp_port,
        orthanc_running,
        r4_database_url=demo_r4_url,
        allowed_calling_aets=[MODALITY_AET],
        **ID_RULE,
    )
    indexed = demo_catalog.study("muller-io-2021")
    queued = _relabelled(demo_catalog.study("okafor-chidi-px-2024"), "NR-5005")
    dismissed = _relabelled(demo_catalog.study("okafor-chinedu-px-2024"), "NR-5006")

    gateway = Gateway(settings)
    gateway.start(workers=0)
    try:
        storescu(indexed.files, gateway_scp_port, orthanc_running.ae_title)
        push(queued, gateway_scp_port, MODALITY_AET)
        push(dismissed, gateway_scp_port, MODALITY_AET)
        assert wait_until(lambda: gateway.review.count() == 2, 30)
        assert gateway.pushes.wait_idle(10)
        item = next(
            i for i in gateway.review.list() if i.study_uid == str(dismissed[0].StudyInstanceUID)
        )
        gateway.dismiss_review(item.id, "test images", "staff")
    finally:
        gateway.stop(timeout=5)
    before = _review_states(gateway)
    fetched_at = gateway.index.study(indexed.study_uid).fetched_at
    assert [state for _, _, state in before] == [ReviewState.DISMISSED, ReviewState.OPEN]

    # Files nobody noted a sender for (a push from before this version, a CLI fetch).
    found = demo_catalog.study("vanderberg-visit-2019")  # R4-1004: the id rule links it
    store = gateway.node.store
    for path in found.files:
        ds = dcmread(path, stop_before_pixels=True)
        target = store.path_for(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)

    caplog.set_level(logging.INFO, logger="gateway")
    restarted = Gateway(settings)
    restarted.start(workers=0)
    try:
        assert restarted.pushes.wait_idle(30)
    finally:
        restarted.stop(timeout=5)
    recovered = restarted.index.study(found.study_uid)
    assert recovered is not None
    assert recovered.pacs_name == UNKNOWN_SENDER
    assert recovered.pacs_patient_id == demo_studies.COMPOUND_NAME_PATIENT_ID
    assert recovered.instance_count == found.instance_count
    assert _review_states(restarted) == before
    assert restarted.index.study(indexed.study_uid).fetched_at == fetched_at
    messages = [r.getMessage() for r in caplog.records if r.name == "gateway.pushes.recovery"]
    assert messages == [
        "received but never matched (the gateway stopped first): 1 study, matched now as "
        f"pushes: {found.study_uid}"
    ]

    # Nothing new since: the next start does nothing.
    caplog.clear()
    again = Gateway(settings)
    again.start(workers=0)
    try:
        assert again.pushes.wait_idle(10)
    finally:
        again.stop(timeout=5)
    assert not [r for r in caplog.records if r.name.startswith("gateway.push")]
    assert _review_states(again) == before
    assert again.index.study(found.study_uid).fetched_at == recovered.fetched_at


def test_a_study_a_failed_fetch_asked_for_is_not_taken_for_a_push(tmp_path):
    settings = Settings(
        data_dir=tmp_path / "var",
        workers=0,
        pacs=[PacsSettings(name="main", ae_title="PACS", host=HOST, port=1)],
    )
    gateway = Gateway(settings)
    asked, pushed = generate_uid(), generate_uid()
    for uid in (asked, pushed):
        (gateway.node.store.study_dir(uid) / "1.2.3").mkdir(parents=True)
    job, _ = gateway.submit_fetch(FetchRequest(pacs_patient_id="P-1"))
    claimed = gateway.jobs.claim("w1", ["fetch"], 30)
    assert claimed is not None and claimed.id == job.id
    gateway.jobs.report(job.id, "w1", checkpoint={"studies": [{"study_uid": asked}]})
    gateway.jobs.fail(job.id, "w1", "The PACS rejected the association.", error="rejected")

    found = find_unmatched(gateway.node.store.root, gateway.engine, gateway.jobs)

    assert found == [pushed]
