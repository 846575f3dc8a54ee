"""End to end over HTTP: a client submits a fetch to `pacs-gateway serve` and polls it."""

from __future__ import annotations

import demo_studies
import httpx
from gateway_testkit import gateway_settings
from orthanc_server import wait_until
from serve_process import ServeProcess

from gateway.core.database import open_database
from gateway.core.keys import KeyStore

OUTSIDE_ID = demo_studies.SAME_PERSON_IDS[1]


def test_post_a_fetch_poll_with_etags_until_done_and_find_it_indexed(
    tmp_path, gateway_scp_port, orthanc_running, demo_catalog
):
    settings = gateway_settings(tmp_path / "gw", gateway_scp_port, orthanc_running)
    _, key = KeyStore(open_database(settings.database_url)).create("flynotes", "service")
    serve = ServeProcess(settings, tmp_path)
    serve.start()
    try:
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{serve.http_port}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        accepted = api.post("/api/v1/fetches", json={"pacs_patient_id": OUTSIDE_ID})
        assert accepted.status_code == 202, accepted.text
        location = accepted.headers["Location"]
        assert location == f"/api/v1/jobs/{accepted.json()['id']}"

        seen: dict[str, str] = {}

        def finished() -> bool:
            poll = api.get(location)
            seen[poll.json()["message"]] = poll.headers["ETag"]
            return poll.json()["state"] in ("succeeded", "failed", "cancelled")

        assert wait_until(finished, 180)
        done = api.get(location)
        assert done.json()["state"] == "succeeded", done.json()["message"]
        assert "Retry-After" not in done.headers
        assert any(m.startswith("Fetching study 1 of 2: ") for m in seen)
        unchanged = api.get(location, headers={"If-None-Match": done.headers["ETag"]})
        assert unchanged.status_code == 304
        assert unchanged.content == b""

        demo = {s.study_uid: s for s in demo_catalog.studies_for(OUTSIDE_ID)}
        listed = api.get(f"/api/v1/patients/{OUTSIDE_ID}/studies").json()["studies"]
        assert {s["study_uid"]: s["instance_count"] for s in listed} == {
            uid: s.instance_count for uid, s in demo.items()
        }
        for uid, study in demo.items():
            detail = api.get(f"/api/v1/studies/{uid}").json()
            assert {s["series_uid"]: s["instance_count"] for s in detail["series"]} == {
                s.series_uid: len(s.instances) for s in study.series
            }
        stored = {p.stem for p in (tmp_path / "gw" / "studies").rglob("*.dcm")}
        assert stored == {uid for s in demo.values() for uid in s.sop_instance_uids}
    finally:
        assert serve.stop()
    log = serve.log_path.read_text(errors="replace")
    assert "GET /api/v1/patients/{pacs_patient_id}/studies 200" in log
    patient = demo_catalog.patient(OUTSIDE_ID)
    for secret in (OUTSIDE_ID, patient.name.split("^")[0], patient.birth_date):
        assert secret not in log
