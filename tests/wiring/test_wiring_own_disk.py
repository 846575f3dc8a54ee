"""A fetch into a full disk: the job says it is the gateway's own disk and how much is free,
keeps trying, and finishes once there is room; its byte count is what is on disk. A real
tmpfs smaller than the study, real Orthanc, C-MOVE to the gateway's SCP."""

from __future__ import annotations

from orthanc_server import wait_until
from pytest_orthanc import PLAIN_STUDY

import jobs
from gateway.fetch.request import FetchRequest
from gateway.web.job_page import job_view
from gateway.web.redact import for_clinicians
from testkit.small_disk import grow

OUR_DISK = "The gateway's own disk would not take the images"


def test_a_full_disk_is_named_and_the_job_finishes_once_there_is_room(
    wired_gateway, orthanc_running, demo_catalog, small_disks
):
    study = demo_catalog.study(PLAIN_STUDY)
    size = sum(p.stat().st_size for p in study.files)
    disk = small_disks(size // 2)
    gateway = wired_gateway(orthanc_running, storage_dir=disk / "studies")
    job, _ = gateway.submit_fetch(
        FetchRequest(pacs_patient_id=study.patient_id, study_uids=[study.study_uid])
    )

    assert wait_until(lambda: OUR_DISK in gateway.jobs.get(job.id).message, 60)
    waiting = gateway.jobs.get(job.id)
    assert waiting.active  # it will try again: a disk can be given room
    assert "MB free where the gateway keeps studies" in waiting.message
    assert "PACS is not at fault" in waiting.message
    page = for_clinicians(job_view(gateway, waiting).sentence + job_view(gateway, waiting).detail)
    assert "gateway's own disk" in page and "AE title" not in page
    assert gateway.node.scp.store_failures > 0

    grow(disk, size * 3)

    finished = {s.value for s in jobs.FINISHED_STATES}
    assert wait_until(lambda: gateway.jobs.get(job.id).state in finished, 120)
    done = gateway.jobs.get(job.id)
    assert done.state == "succeeded", done.message
    on_disk = sorted(gateway.node.store.study_dir(study.study_uid).rglob("*.dcm"))
    assert len(on_disk) == study.instance_count
    # What the job says it holds is what is on disk, over both attempts.
    assert done.progress["bytes"] == sum(p.stat().st_size for p in on_disk)
    assert list(gateway.node.store.incoming.iterdir()) == []
