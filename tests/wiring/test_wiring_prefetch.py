"""A day's prefetch from R4 appointments against the real Orthanc: the patients who come in
have their studies fetched before their day, as background work, kept until the day has
passed; cancelled appointments and other days are left alone; a second pass fetches nothing
new; the CLI's dry run lists who comes in."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from html import unescape

from demo_practice import write_demo_practice
from demo_studies import SAME_PERSON_IDS
from fastapi.testclient import TestClient
from orthanc_server import wait_until
from typer.testing import CliRunner

import jobs
from gateway.app import create_app
from gateway.cli.main import app
from gateway.core.settings import CONFIG_ENV
from gateway.prefetch.day import PatientState, summary
from gateway.prefetch.schedule import PrefetchSchedule
from r4.database import create_r4_engine
from r4.mapping import R4Mapping
from testkit.sample_data import insert_appointments

DAY = date(2026, 12, 8)
OUTSIDE_ID = SAME_PERSON_IDS[1]  # EXT-77812: R4 patient 1003's studies at another provider
BOOK = {"appointment_start": "StartTime", "appointment_cancelled": "Cancelled"}


def _book(url: str) -> None:
    engine = create_r4_engine(url, R4Mapping(**BOOK))
    insert_appointments(
        engine,
        [
            (1001, datetime(2026, 12, 8, 9, 30), False),
            (1002, datetime(2026, 12, 8, 11, 0), True),  # cancelled
            (1003, datetime(2026, 12, 9, 10, 0), False),  # another day
        ],
    )
    engine.dispose()


def test_the_day_s_patients_are_fetched_in_the_background_and_kept(
    wired_gateway, orthanc_running, demo_catalog, demo_r4_url
):
    _book(demo_r4_url)
    gateway = wired_gateway(orthanc_running, r4_url=demo_r4_url, r4=BOOK)

    queued = gateway.prefetch(DAY)

    assert [(p.r4_patient_id, p.starts_at) for p, _ in queued] == [
        (1001, datetime(2026, 12, 8, 9, 30))
    ]
    ((planned, job),) = queued
    assert job.priority == jobs.BACKGROUND
    assert planned.request.date_from == date(2021, 12, 8)
    finished = {s.value for s in jobs.FINISHED_STATES}
    assert wait_until(lambda: gateway.jobs.get(job.id).state in finished, 120)
    done = gateway.jobs.get(job.id)
    assert done.state == "succeeded", done.message
    # Five years back (years_back): the 2023 study, not the one of June 2021.
    expected = {s.study_uid for s in demo_catalog.studies_for("R4-1001") if s.date >= "20211208"}
    assert len(expected) == 1
    fetched = {s.study_uid for s in gateway.index.patient_studies("R4-1001")}
    assert fetched == expected
    keep_until = datetime.combine(DAY + timedelta(days=8), datetime.min.time(), tzinfo=UTC)
    for uid in expected:
        pinned = gateway.index.study(uid).pinned_until
        assert pinned.replace(tzinfo=UTC) == keep_until  # the day plus keep_prefetched_days
    for other in ("R4-1002", "R4-1003"):
        assert gateway.index.patient_studies(other) == []

    files = sorted(gateway.node.store.root.glob("*/*/*.dcm"))
    ((_, again),) = gateway.prefetch(DAY)
    assert wait_until(lambda: gateway.jobs.get(again.id).state in finished, 120)
    assert gateway.jobs.get(again.id).state == "succeeded"
    assert sorted(gateway.node.store.root.glob("*/*/*.dcm")) == files  # nothing new
    # The clinician's fetch the next morning finds everything here, and says since when.
    (asked, _) = gateway.submit_fetch(planned.request.model_copy(update={"keep_until": None}))
    assert wait_until(lambda: gateway.jobs.get(asked.id).state in finished, 120)
    message = gateway.jobs.get(asked.id).message
    assert message.startswith("Ready: 1 study (1 image) already here, fetched on ")


def test_the_cli_dry_run_lists_who_comes_in(tmp_path, demo_r4_url, orthanc_running, monkeypatch):
    # `--config` sets PACS_GATEWAY_CONFIG in this process; the next test's Settings would
    # read that file too. setenv first, so teardown restores the variable's absence.
    monkeypatch.setenv(CONFIG_ENV, "")
    monkeypatch.delenv(CONFIG_ENV)
    from gateway_testkit import gateway_settings
    from serve_process import write_config

    _book(demo_r4_url)
    settings = gateway_settings(
        tmp_path / "gw", 11112, orthanc_running, r4={"database_url": demo_r4_url, **BOOK}
    )
    config = write_config(tmp_path / "prefetch.toml", settings)

    result = CliRunner().invoke(
        app, ["prefetch", "--config", str(config), "--day", "2026-12-08", "--dry-run"]
    )

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Tue 8 Dec 2026: 1 patients with appointments",
        "  09:30  R4 patient 1001",
    ]


def test_the_api_and_the_page_show_the_day(wired_gateway, orthanc_running, demo_r4_url):
    _book(demo_r4_url)
    gateway = wired_gateway(orthanc_running, r4_url=demo_r4_url, r4=BOOK)
    client = TestClient(create_app(gateway), follow_redirects=False)  # started already
    _, service = client.app.state.keys.create("flynotes", "service")
    _, clinician = client.app.state.keys.create("front-desk", "clinician")
    headers = {"Authorization": f"Bearer {service}"}

    before = client.get("/api/v1/prefetch", params={"day": "2026-12-08"}, headers=headers)
    assert before.status_code == 200, before.text
    assert before.json()["summary"] == "Tue 8 Dec: 1 patient \N{EM DASH} 1 not asked for yet"
    refused = client.post(
        "/api/v1/prefetch/runs",
        json={"day": "2026-12-08"},
        headers={"Authorization": f"Bearer {clinician}"},
    )
    assert refused.status_code == 403
    started = client.post("/api/v1/prefetch/runs", json={"day": "2026-12-08"}, headers=headers)
    assert started.status_code == 202
    (patient,) = started.json()["patients"]
    assert patient["r4_patient_id"] == 1001 and patient["job_id"]

    def ready() -> bool:
        day = client.get("/api/v1/prefetch", params={"day": "2026-12-08"}, headers=headers)
        return day.json()["patients"][0]["state"] == "ready"

    assert wait_until(ready, 120)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/ui/login").text)[1]
    client.post("/ui/login", data={"csrf_token": token, "api_key": clinician})
    html = unescape(client.get("/ui/prefetch", params={"day": "2026-12-08"}).text)
    assert "Tue 8 Dec: 1 patient \N{EM DASH} 1 ready" in html
    assert "09:30" in html and "Müller" in html


def test_the_schedule_runs_the_evening_pass_once_and_the_rolling_pass_for_late_bookings(
    wired_gateway, orthanc_running, demo_r4_url
):
    _book(demo_r4_url)
    gateway = wired_gateway(orthanc_running, r4_url=demo_r4_url, r4=BOOK)
    now = [datetime(2026, 12, 7, 17, 59)]  # Monday evening, before run_at (18:00)
    schedule = PrefetchSchedule(gateway.settings.prefetch, gateway.prefetch, clock=lambda: now[0])

    assert schedule.run_once() == ["rolling"]  # nothing for Monday: no new job
    assert gateway.jobs.list(kind="fetch") == []
    now[0] = datetime(2026, 12, 7, 18, 0)
    assert schedule.run_once() == ["evening", "rolling"]
    (evening,) = gateway.jobs.list(kind="fetch")
    assert evening.params["r4_patient_id"] == "1001"  # Tuesday's patient
    now[0] = datetime(2026, 12, 7, 18, 15)
    assert schedule.run_once() == ["rolling"]  # the evening pass ran today already
    assert len(gateway.jobs.list(kind="fetch")) == 1

    # Tuesday morning: someone booked for 10:30 today, after the evening pass.
    engine = create_r4_engine(demo_r4_url, R4Mapping(**BOOK))
    insert_appointments(engine, [(1004, datetime(2026, 12, 8, 10, 30), False)])
    engine.dispose()
    now[0] = datetime(2026, 12, 8, 7, 0)  # 10:30 is more than ahead_minutes (120) away
    schedule.run_once()
    assert {j.params["r4_patient_id"] for j in gateway.jobs.list(kind="fetch")} == {"1001"}
    now[0] = datetime(2026, 12, 8, 8, 45)
    schedule.run_once()
    jobs_now = gateway.jobs.list(kind="fetch")
    assert {j.params["r4_patient_id"] for j in jobs_now} == {"1001", "1004"}
    assert all(j.priority == jobs.BACKGROUND for j in jobs_now)


def test_an_ng_practice_s_patient_whose_other_studies_need_a_person_is_reviewed_the_day_before(
    wired_gateway, orthanc_running, demo_catalog, tmp_path
):
    """NG shape (Appointment.PatientID = Patient.RecordID, ScheduledDate): R4 patient 1003
    also has studies under another provider's id (EXT-77812), which only a person can link:
    they are in the review queue before the appointment, and the day says so."""
    ng = {"preset": "NG_R4_Sys2000"}
    url = write_demo_practice(tmp_path / "ng.db", mapping=R4Mapping(**ng))
    engine = create_r4_engine(url, R4Mapping(**ng))
    insert_appointments(engine, [(1003, date(2026, 12, 8), False)])
    engine.dispose()
    # Name and birth date queries find the other provider's studies (match_by_demographics).
    gateway = wired_gateway(orthanc_running, r4_url=url, r4=ng, match_by_demographics=True)

    ((planned, job),) = gateway.prefetch(DAY)

    assert planned.r4_patient_id == 1003 and planned.starts_at == datetime(2026, 12, 8)
    finished = {s.value for s in jobs.FINISHED_STATES}
    assert wait_until(lambda: gateway.jobs.get(job.id).state in finished, 120)
    assert gateway.jobs.get(job.id).state == "succeeded", gateway.jobs.get(job.id).message
    outside = {s.study_uid for s in demo_catalog.studies_for(OUTSIDE_ID)}
    waiting = {item.study_uid for item in gateway.review.list()}
    assert outside and outside <= waiting  # queued for a person, the evening before
    for uid in outside:
        assert gateway.index.study(uid) is None  # not filed under anyone meanwhile
    (day,) = gateway.prefetch_status(DAY)
    assert day.state is PatientState.NEEDS_REVIEW
    assert summary(DAY, [day]) == "Tue 8 Dec: 1 patient \N{EM DASH} 1 need review"
