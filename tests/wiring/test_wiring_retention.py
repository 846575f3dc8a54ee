"""Retention against the real Orthanc: limits smaller than the studies asked for, least
recently used removed first and fetched again on demand, what is kept or pushed never
removed, and a small real disk that fills.

"Hours ago" is written into the index's last-use column: the test stands for time passing,
the gateway does everything else itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from orthanc_server import wait_until
from wiring_senders import storescu

import jobs
from gateway.app import create_app
from gateway.core.models import study
from gateway.fetch.request import FetchRequest
from gateway.review.audit import AuditAction, study_subject

MB = 10**6
A, B, C = "muller-io-2021", "muller-px-2023", "lukasiewicz-io-2022"  # 10.4, 8.1, 7.8 MB


def _fetch(gateway, demo) -> jobs.Job:
    job, _ = gateway.submit_fetch(
        FetchRequest(pacs_patient_id=demo.patient_id, study_uids=[demo.study_uid])
    )
    finished = {s.value for s in jobs.FINISHED_STATES}
    assert wait_until(lambda: gateway.jobs.get(job.id).state in finished, 120)
    return gateway.jobs.get(job.id)


def _used_hours_ago(gateway, demo, hours: float) -> None:
    with gateway.engine.begin() as conn:
        conn.execute(
            study.update()
            .where(study.c.study_uid == demo.study_uid)
            .values(last_used_at=datetime.now(UTC) - timedelta(hours=hours))
        )


def _client(gateway) -> TestClient:
    return TestClient(create_app(gateway), raise_server_exceptions=False)  # started already


def _bearer(client: TestClient, role: str) -> dict[str, str]:
    _, key = client.app.state.keys.create(f"test-{role}", role)
    return {"Authorization": f"Bearer {key}"}


def _removals(gateway, demo) -> list:
    return [
        e
        for e in gateway.audit.list(subject=study_subject(demo.study_uid))
        if e.action == AuditAction.STUDY_REMOVED
    ]


def test_the_least_recently_used_study_makes_room_and_comes_back_when_asked(
    wired_gateway, orthanc_running, demo_catalog
):
    a, b, c = (demo_catalog.study(k) for k in (A, B, C))
    gateway = wired_gateway(orthanc_running, storage_max_gb=0.025)
    assert _fetch(gateway, a).state == "succeeded"
    assert _fetch(gateway, b).state == "succeeded"
    _used_hours_ago(gateway, a, 1)
    _used_hours_ago(gateway, b, 2)  # the least recently used

    done = _fetch(gateway, c)

    assert done.state == "succeeded", done.message
    assert gateway.index.study(b.study_uid) is None
    assert not gateway.node.store.study_dir(b.study_uid).exists()
    assert gateway.index.study(a.study_uid) is not None
    assert gateway.index.study(c.study_uid) is not None
    assert gateway.retention.figures().used_bytes <= 25 * MB
    (event,) = _removals(gateway, b)
    assert event.actor == "gateway:retention"
    assert event.before["pacs_patient_id"] == b.patient_id and event.before["bytes"] > 0
    assert event.after["rule"] == "max_size"

    client = _client(gateway)
    gone = client.get(f"/api/v1/studies/{b.study_uid}", headers=_bearer(client, "clinician"))
    assert gone.status_code == 404
    today = datetime.now(UTC)
    assert gone.json()["detail"] == (
        f"The gateway removed this study on {today.day} {today:%b %Y} to keep the store "
        "within 25 MB; fetch it again to see it."
    )

    again = _fetch(gateway, b)
    assert again.state == "succeeded", again.message
    back = gateway.index.study(b.study_uid)
    assert back is not None and back.instance_count == b.instance_count
    assert gateway.index.removal(b.study_uid) is None
    # Every indexed image is on disk, and nothing else is.
    on_disk = {p.stem for p in gateway.node.store.root.glob("*/*/*.dcm")}
    indexed = {p.stem for s in (a, b, c) for p in gateway.index.instance_paths(s.study_uid)}
    assert on_disk == indexed


def test_kept_and_pushed_studies_stay_and_the_fetch_waits_saying_why(
    wired_gateway, orthanc_running, demo_catalog, demo_r4_url, gateway_scp_port
):
    pushed, kept, wanted = (demo_catalog.study(k) for k in (A, "lukasiewicz-cr-2020", B))
    gateway = wired_gateway(orthanc_running, r4_url=demo_r4_url, storage_max_gb=0.025)
    # A PACS pushes one study unasked (matched by the id rule, indexed with no fetch).
    storescu(pushed.files, gateway_scp_port, orthanc_running.ae_title)
    assert wait_until(lambda: gateway.index.study(pushed.study_uid) is not None, 30)
    assert _fetch(gateway, kept).state == "succeeded"
    client = _client(gateway)
    staff = _bearer(client, "staff")
    marked = client.put(
        f"/api/v1/studies/{kept.study_uid}/keep", json={"keep": True}, headers=staff
    )
    assert marked.status_code == 200 and marked.json()["keep"] is True
    _used_hours_ago(gateway, pushed, 5)
    _used_hours_ago(gateway, kept, 4)

    job, _ = gateway.submit_fetch(
        FetchRequest(pacs_patient_id=wanted.patient_id, study_uids=[wanted.study_uid])
    )
    assert wait_until(lambda: "storage_max_gb" in gateway.jobs.get(job.id).message, 60)
    waiting = gateway.jobs.get(job.id)
    assert waiting.active
    assert waiting.message.startswith("The gateway's store holds 23 MB of its 25 MB")
    assert "every study that could be removed for it is in use, kept or pinned" in waiting.message
    assert "PACS" not in waiting.message
    assert gateway.index.study(pushed.study_uid) is not None
    assert gateway.index.study(kept.study_uid) is not None

    # Staff let the kept study go: the waiting fetch makes its room from it.
    unmarked = client.put(
        f"/api/v1/studies/{kept.study_uid}/keep", json={"keep": False}, headers=staff
    )
    assert unmarked.status_code == 200
    finished = {s.value for s in jobs.FINISHED_STATES}
    assert wait_until(lambda: gateway.jobs.get(job.id).state in finished, 60)
    assert gateway.jobs.get(job.id).state == "succeeded"
    assert gateway.index.study(kept.study_uid) is None
    assert gateway.index.study(pushed.study_uid) is not None  # push-only: kept by default
    keep_events = [
        e.after["keep"]
        for e in gateway.audit.list(subject=study_subject(kept.study_uid))
        if e.action == AuditAction.STUDY_KEEP
    ]
    assert sorted(keep_events) == [False, True]


def test_a_small_disk_keeps_its_free_space_floor(
    wired_gateway, orthanc_running, demo_catalog, small_disks
):
    a, c = demo_catalog.study(A), demo_catalog.study(C)
    disk = small_disks(30 * MB)
    gateway = wired_gateway(
        orthanc_running, storage_dir=disk / "studies", storage_min_free_gb=0.012
    )
    assert _fetch(gateway, a).state == "succeeded"
    _used_hours_ago(gateway, a, 3)

    done = _fetch(gateway, c)

    assert done.state == "succeeded", done.message
    assert gateway.index.study(a.study_uid) is None
    (event,) = _removals(gateway, a)
    assert event.after["rule"] == "min_free"
    assert event.after["reason"] == "to keep 12 MB free on the disk"
    assert gateway.retention.figures().free_bytes >= 12 * MB
    ready = gateway.readiness().checks["storage"]
    assert ready.ok and "free on its disk (keeps 12 MB free)" in ready.detail
