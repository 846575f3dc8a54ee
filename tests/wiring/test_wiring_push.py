"""Studies pushed unsolicited to the gateway's Storage SCP: matched, then indexed or queued.

Senders are real: DCMTK's storescu, and pynetdicom for datasets changed in memory.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import demo_studies
from orthanc_server import wait_until
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from wiring_senders import MODALITY_AET, push, storescu

from gateway.fetch.request import FetchRequest
from gateway.pushes.receiver import NO_R4_REASON
from gateway.review import ReviewOrigin
from r4.database import create_r4_engine
from testkit.sample_data import update_patient


def _relabelled(study, patient_id: str, issuer: str) -> list[Dataset]:
    """The study's files under another PatientID and fresh uids: the same person as another
    provider files them."""
    study_uid = generate_uid(entropy_srcs=["wiring", study.key, patient_id])
    datasets = []
    for path in study.files:
        ds = dcmread(path)
        ds.PatientID = patient_id
        ds.IssuerOfPatientID = issuer
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = generate_uid(entropy_srcs=[study_uid, ds.SeriesInstanceUID])
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[study_uid, ds.SOPInstanceUID])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        datasets.append(ds)
    return datasets


def _stored_files(gateway, study_uid: str) -> list[Path]:
    return sorted(gateway.node.store.study_dir(study_uid).glob("*/*.dcm"))


def test_a_pushed_study_that_matches_is_indexed_under_the_sending_pacs(
    wired_gateway, orthanc_running, demo_catalog, demo_r4_url, gateway_scp_port
):
    gateway = wired_gateway(orthanc_running, r4_url=demo_r4_url)
    study = demo_catalog.study("muller-io-2021")

    storescu(study.files, gateway_scp_port, orthanc_running.ae_title)

    assert wait_until(lambda: gateway.index.study(study.study_uid) is not None, 30)
    indexed = gateway.index.study(study.study_uid)
    assert indexed.pacs_name == "test-orthanc"
    assert indexed.pacs_patient_id == demo_studies.LATIN1_PATIENT_ID
    assert indexed.instance_count == study.instance_count
    assert indexed.modalities == ("IO",)
    assert indexed.study_date == date(2021, 6, 15)
    assert gateway.pushes.wait_idle(10)
    assert gateway.review.count() == 0


def test_a_pushed_twin_under_an_unknown_id_is_queued_and_attached_once_resolved(
    wired_gateway, orthanc_running, demo_catalog, demo_r4_url, gateway_scp_port
):
    gateway = wired_gateway(
        orthanc_running, r4_url=demo_r4_url, allowed_calling_aets=[MODALITY_AET]
    )
    datasets = _relabelled(demo_catalog.study("okafor-chidi-px-2024"), "NR-5005", "NORTHSIDE")
    study_uid = str(datasets[0].StudyInstanceUID)

    push(datasets, gateway_scp_port, MODALITY_AET)

    assert wait_until(lambda: gateway.review.count() == 1, 30)
    (item,) = gateway.review.list()
    assert item.origin is ReviewOrigin.PUSH
    assert item.pacs_name == MODALITY_AET
    assert item.study_uid == study_uid
    assert item.pacs_patient["patient_id"] == "NR-5005"
    assert "possible_twin" in item.why  # same birth date and family name: never automatic
    assert {c.r4_patient_id for c in item.candidates} >= {1005, 1006}
    assert {c.display["given_name"] for c in item.candidates} >= {"Chidi", "Chinedu"}
    # Kept, not indexed, until a person decides.
    assert len(_stored_files(gateway, study_uid)) == len(datasets)
    assert gateway.index.study(study_uid) is None

    gateway.resolve_review(item.id, 1005, actor="staff")

    indexed = gateway.index.study(study_uid)
    assert indexed is not None
    assert indexed.instance_count == len(datasets)
    assert indexed.pacs_name == MODALITY_AET
    assert indexed.pacs_patient_id == "NR-5005"
    assert gateway.links.r4_patient_for("NR-5005", "NORTHSIDE") == 1005


def test_a_dismissed_study_pushed_again_stays_dismissed_and_its_files_stay(
    wired_gateway, orthanc_running, demo_catalog, demo_r4_url, gateway_scp_port, monkeypatch
):
    gateway = wired_gateway(
        orthanc_running, r4_url=demo_r4_url, allowed_calling_aets=[MODALITY_AET]
    )
    datasets = _relabelled(demo_catalog.study("okafor-chidi-px-2024"), "NR-5005", "NORTHSIDE")
    study_uid = str(datasets[0].StudyInstanceUID)
    push(datasets, gateway_scp_port, MODALITY_AET)
    assert wait_until(lambda: gateway.review.count() == 1, 30)
    (item,) = gateway.review.list()
    dismissed = gateway.dismiss_review(item.id, "phantom from the service visit", "staff")
    handled = []
    handle = gateway.pushes.handle
    monkeypatch.setattr(gateway.pushes, "handle", lambda r: handled.append(handle(r)))

    push(datasets, gateway_scp_port, MODALITY_AET)

    assert wait_until(lambda: handled, 30)  # the second push was matched
    assert gateway.review.count() == 0  # staff are not asked twice
    assert gateway.review.list(state=None) == [dismissed]
    # Received files are never deleted; they are simply not filed under anyone.
    assert len(_stored_files(gateway, study_uid)) == len(datasets)
    assert gateway.index.study(study_uid) is None


def test_a_pushed_study_whose_demographics_contradict_the_id_rule_is_queued(
    wired_gateway, orthanc_running, demo_catalog, demo_r4_url, gateway_scp_port
):
    engine = create_r4_engine(demo_r4_url)
    update_patient(
        engine, 1002, surname="Hargreaves", forename="Thomas", birth_date=date(1950, 2, 3)
    )
    engine.dispose()
    gateway = wired_gateway(orthanc_running, r4_url=demo_r4_url)
    study = demo_catalog.study("lukasiewicz-io-2022")

    storescu(study.files, gateway_scp_port, orthanc_running.ae_title)

    assert wait_until(lambda: gateway.review.count() == 1, 30)
    (item,) = gateway.review.list()
    assert item.origin is ReviewOrigin.PUSH
    assert item.pacs_name == "test-orthanc"
    assert item.study_uid == study.study_uid
    assert "id_rule_contradicted" in item.why
    # UTF-8 name read from the stored header, as staff will see it.
    assert item.pacs_patient["name"] == "Łukasiewicz^Małgorzata"
    assert item.instance_count == study.instance_count
    assert len(_stored_files(gateway, study.study_uid)) == study.instance_count
    assert gateway.index.study(study.study_uid) is None


def test_without_r4_a_push_is_kept_and_queued_and_fetched_studies_are_not_pushes(
    wired_gateway, orthanc_running, demo_catalog, gateway_scp_port
):
    gateway = wired_gateway(orthanc_running)
    fetched = demo_catalog.studies_for(demo_studies.LATIN1_PATIENT_ID)
    pushed = demo_catalog.study("vanderberg-visit-2019")

    # A fetch's C-MOVE also arrives on the Storage SCP: asked for, so not a push.
    job, _ = gateway.submit_fetch(FetchRequest(pacs_patient_id=demo_studies.LATIN1_PATIENT_ID))
    assert wait_until(lambda: gateway.jobs.get(job.id).state == "succeeded", 120)
    storescu(pushed.files, gateway_scp_port, orthanc_running.ae_title)

    # Receipts are handled in arrival order: once the push is queued, the fetch's were seen.
    assert wait_until(lambda: gateway.review.count() >= 1, 30)
    assert gateway.pushes.wait_idle(10)
    (item,) = gateway.review.list()
    assert item.study_uid == pushed.study_uid
    assert item.origin is ReviewOrigin.PUSH
    # Who pushed it, and from where, is part of the item.
    assert item.reasons == (NO_R4_REASON, f"Sent by {orthanc_running.ae_title} from 127.0.0.1.")
    assert item.candidates == ()
    assert len(_stored_files(gateway, pushed.study_uid)) == pushed.instance_count
    assert gateway.index.study(pushed.study_uid) is None
    for study in fetched:
        assert gateway.index.study(study.study_uid).job_id == job.id
