"""`pacs-gateway serve` as real processes: killed mid-retrieve, and two sharing PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import demo_studies
import psycopg
import pytest
import sqlalchemy as sa
from dicom_bytes import dataset_body
from gateway_testkit import gateway_settings
from orthanc_server import free_port, wait_until
from serve_process import ServeProcess

from gateway.fetch.request import FetchRequest
from gateway.service import Gateway

OUTSIDE_ID = demo_studies.SAME_PERSON_IDS[1]


@pytest.fixture
def serves() -> Iterator[list[ServeProcess]]:
    running: list[ServeProcess] = []
    yield running
    for process in running:
        process.kill()


def test_killed_mid_retrieve_the_job_completes_after_restart(
    tmp_path, gateway_scp_port, orthanc_running, demo_catalog, serves
):
    settings = gateway_settings(
        tmp_path / "gw", gateway_scp_port, orthanc_running, workers=1, lease_seconds=3.0
    )
    submitter = Gateway(settings)  # not started: only its database and job store are used
    ct = demo_catalog.study("dubois-ext-cbct-2023")
    job, _ = submitter.submit_fetch(FetchRequest(pacs_patient_id=OUTSIDE_ID, modalities=["CT"]))

    first = ServeProcess(settings, tmp_path, "first")
    serves.append(first)
    first.start()
    assert wait_until(
        lambda: submitter.jobs.get(job.id).progress.get("instances_received", 0) >= 40, 60
    ), first.log_tail()
    first.kill()

    store = submitter.node.store
    for path in store.study_dir(ct.study_uid).rglob("*.dcm"):  # nothing half-written
        assert dataset_body(path.read_bytes()) == dataset_body(
            orthanc_running.instance_file(path.stem)
        )

    second = ServeProcess(settings, tmp_path, "second")
    serves.append(second)
    second.start()
    assert wait_until(lambda: submitter.jobs.get(job.id).state == "succeeded", 120), (
        submitter.jobs.get(job.id),
        second.log_tail(),
    )
    assert second.stop()

    stored = sorted(store.study_dir(ct.study_uid).rglob("*.dcm"))
    assert sorted(p.stem for p in stored) == sorted(ct.sop_instance_uids)
    for path in stored:
        assert dataset_body(path.read_bytes()) == dataset_body(
            orthanc_running.instance_file(path.stem)
        )
    assert list(store.incoming.iterdir()) == []
    assert submitter.index.study(ct.study_uid).instance_count == ct.instance_count


@pytest.fixture
def postgres_url(postgres_server: sa.URL) -> Iterator[str]:
    name = f"gw_{uuid.uuid4().hex[:12]}"
    admin = postgres_server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield postgres_server.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_two_gateways_on_one_postgresql_run_every_job_once(
    tmp_path, orthanc_running, demo_catalog, postgres_url, serves
):
    # C-GET, so each process receives on its own association and needs no move destination.
    base = gateway_settings(
        tmp_path / "gw", free_port(), orthanc_running, database_url=postgres_url, workers=2
    )
    base.pacs[0].retrieve_method = "get"
    submitter = Gateway(base)
    requests = [
        FetchRequest(pacs_patient_id=p.patient_id, modalities=[m])
        for p in demo_catalog.patients
        for m in ("IO", "PX", "CR", "MR")
        if any(m in s.modalities for s in demo_catalog.studies_for(p.patient_id))
    ]
    submitted = [submitter.submit_fetch(r)[0].id for r in requests]

    for name in ("one", "two"):
        process = ServeProcess(base.model_copy(update={"dicom_port": free_port()}), tmp_path, name)
        serves.append(process)
        process.start()

    assert wait_until(
        lambda: all(submitter.jobs.get(i).state == "succeeded" for i in submitted), 180
    ), [(submitter.jobs.get(i).state, submitter.jobs.get(i).message) for i in submitted]
    for process in serves:
        assert process.stop()

    for job_id in submitted:
        runs = [e for e in submitter.jobs.events(job_id) if e.state == "running"]
        assert len(runs) == 1, job_id
    expected = {
        uid
        for s in demo_catalog.studies
        if s.modalities & {"IO", "PX", "CR", "MR"}
        for uid in s.sop_instance_uids
    }
    stored = [
        p.stem for p in submitter.node.store.root.rglob("*.dcm") if ".incoming" not in p.parts
    ]
    assert sorted(stored) == sorted(expected)
