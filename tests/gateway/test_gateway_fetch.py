"""Fetch jobs through the Gateway object, against the real Orthanc."""

from __future__ import annotations

import re

import demo_studies
from orthanc_server import wait_until
from pytest_orthanc import GATEWAY_AET

import jobs
from gateway.fetch.request import FetchRequest

OUTSIDE_ID = demo_studies.SAME_PERSON_IDS[1]  # CBCT (240 slices) and a 3-series MR


def _wait_for_state(gateway, job_id: str, *states: str, timeout: float = 120) -> jobs.Job:
    assert wait_until(lambda: gateway.jobs.get(job_id).state in states, timeout), gateway.jobs.get(
        job_id
    )
    return gateway.jobs.get(job_id)


def test_a_fetch_job_brings_every_study_home_and_indexes_it(
    make_gateway, orthanc_running, demo_catalog
):
    gateway = make_gateway(orthanc_running)
    messages: list[str] = []

    job, created = gateway.submit_fetch(FetchRequest(pacs_patient_id=OUTSIDE_ID))

    assert created
    assert wait_until(
        lambda: (
            messages.append(gateway.jobs.get(job.id).message)
            or gateway.jobs.get(job.id).state == "succeeded"
        ),
        180,
    )
    done = gateway.jobs.get(job.id)
    demo = demo_catalog.studies_for(OUTSIDE_ID)
    images = sum(s.instance_count for s in demo)
    assert done.message == f"Fetched 2 studies, {images} images."
    assert done.progress["instances_received"] == done.progress["instances_expected"] == images
    assert done.progress["studies_done"] == done.progress["studies_total"] == 2
    assert any(re.fullmatch(r"Fetching study [12] of 2: \d+ of \d+ images", m) for m in messages)
    indexed = {s.study_uid: s for s in gateway.index.patient_studies(OUTSIDE_ID)}
    assert set(indexed) == {s.study_uid for s in demo}
    for study in demo:
        assert indexed[study.study_uid].instance_count == study.instance_count
        paths = gateway.index.instance_paths(study.study_uid)
        assert sorted(p.stem for p in paths) == sorted(study.sop_instance_uids)
        assert all(p.is_file() for p in paths)


def test_the_same_request_while_active_returns_the_same_job(make_gateway, orthanc_running):
    gateway = make_gateway(orthanc_running, workers=0)
    request = FetchRequest(pacs_patient_id=OUTSIDE_ID, modalities=["ct"])

    first, created = gateway.submit_fetch(request)
    again, created_again = gateway.submit_fetch(
        FetchRequest(pacs_patient_id=OUTSIDE_ID, modalities=["CT"])
    )

    assert created and not created_again
    assert again.id == first.id


def test_pacs_down_waits_and_retries_then_succeeds_on_its_own(
    make_gateway, orthanc_factory, demo_catalog, gateway_scp_port
):
    pacs = orthanc_factory(modalities={"gateway": (GATEWAY_AET, "127.0.0.1", gateway_scp_port)})
    study = demo_catalog.study("muller-io-2021")
    demo_studies.store(study.files, "127.0.0.1", pacs.dicom_port, pacs.ae_title)
    pacs.stop()
    gateway = make_gateway(pacs)

    job, _ = gateway.submit_fetch(FetchRequest(pacs_patient_id=study.patient_id))

    waiting = _wait_for_state(gateway, job.id, "waiting_retry", timeout=30)
    assert re.fullmatch(
        rf"The PACS test-orthanc could not be reached: nothing is listening on "
        rf"127\.0\.0\.1:{pacs.dicom_port} \(connection refused\)\. "
        r"Next try in \d+ s \(attempt 2 of 30\)\.",
        waiting.message,
    ), waiting.message
    assert waiting.next_attempt_at is not None

    pacs.start()
    done = _wait_for_state(gateway, job.id, "succeeded", "failed", timeout=60)
    assert done.state == "succeeded", done.message
    assert done.progress["instances_received"] == study.instance_count
    states = [e.state for e in gateway.jobs.events(job.id)]
    assert "waiting_retry" in states


def test_cancel_mid_retrieve_stops_and_leaves_no_partial_file(
    make_gateway, orthanc_running, demo_catalog
):
    gateway = make_gateway(orthanc_running)
    ct = demo_catalog.study("dubois-ext-cbct-2023")

    job, _ = gateway.submit_fetch(FetchRequest(pacs_patient_id=OUTSIDE_ID, modalities=["CT"]))
    assert wait_until(
        lambda: gateway.jobs.get(job.id).progress.get("instances_received", 0) >= 10, 60
    )
    gateway.jobs.request_cancel(job.id)

    cancelled = _wait_for_state(gateway, job.id, "cancelled", "succeeded", timeout=30)
    assert cancelled.state == "cancelled"
    store = gateway.node.store
    assert wait_until(lambda: not any(store.incoming.iterdir()), 15)
    landed = (
        list(store.study_dir(ct.study_uid).rglob("*.dcm"))
        if store.study_dir(ct.study_uid).exists()
        else []
    )
    assert len(landed) < ct.instance_count
    assert gateway.index.study(ct.study_uid) is None
