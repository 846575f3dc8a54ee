from __future__ import annotations

import threading
import zipfile
from typing import Any

import pytest
from r4_testkit import wait_until

from r4.handlers import RestartRequested
from r4.schedule import Scheduler, Task, licence_check, practice_tasks, run_in_thread
from r4.selfupdate import UpdateSource, installed_version
from r4.sync import bulk_upload_patients


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.errors: list[tuple[str, Any]] = []

    def report_message(self, message: str, level: str = "error", extra: Any = None) -> None:
        self.errors.append((message, extra))

    def report_exception(self, exc: BaseException | None = None, *, extra: Any = None) -> None:
        self.errors.append((type(exc).__name__, extra))


def test_tasks_run_on_start_then_every_interval_and_survive_failures():
    rec = Recorder()
    stop = threading.Event()

    def flaky() -> None:
        rec.calls.append("flaky")
        raise RuntimeError("Flynotes down")

    scheduler = Scheduler(
        [
            Task("a", lambda: rec.calls.append("a"), interval=0.02),
            Task("flaky", flaky, interval=0.02),
            Task("later", lambda: rec.calls.append("later"), interval=60, run_on_start=False),
        ],
        reporter=rec,
    )
    thread = run_in_thread("scheduler", scheduler.run, stop, on_restart=lambda e: None)
    assert wait_until(lambda: rec.calls.count("a") >= 3 and rec.calls.count("flaky") >= 3)
    stop.set()
    thread.join(timeout=2)
    assert not thread.is_alive()
    assert rec.calls[:2] == ["a", "flaky"] and "later" not in rec.calls
    assert rec.errors[0] == ("RuntimeError", {"where": "scheduled flaky"})


def test_restart_from_a_task_reaches_on_restart():
    stop = threading.Event()
    restarts: list[RestartRequested] = []

    def update() -> None:
        raise RestartRequested("updated", exit_code=75)

    thread = run_in_thread(
        "scheduler", Scheduler([Task("licence", update)]).run, stop, on_restart=restarts.append
    )
    thread.join(timeout=2)
    assert [r.exit_code for r in restarts] == [75]


def test_practice_schedule_uploads_and_checks_licence(practice, fake_flynotes, flynotes_client):
    engine, summary = practice
    fake_flynotes.gateway_version = installed_version() or "0"
    drained: list[int] = []
    tasks = practice_tasks(
        bulk_upload=lambda: bulk_upload_patients(engine, flynotes_client, batch_size=100),
        check_licence=licence_check(
            flynotes_client,
            drain=lambda: drained.append(1),
            source=UpdateSource(find_links="/nonexistent"),
        ),
    )
    stop = threading.Event()
    thread = run_in_thread("scheduler", Scheduler(tasks).run, stop, on_restart=lambda e: None)
    try:
        assert fake_flynotes.wait_for(
            lambda s: s.initialisations == 1 and s.uploaded_patient_count == summary.patients
        )
    finally:
        stop.set()
        thread.join(timeout=2)
    assert drained == []  # same version: no update


def test_licence_check_updates_when_versions_differ(
    fake_flynotes, flynotes_client, monkeypatch, tmp_path
):
    # pip itself is exercised in test_r4_selfupdate; here only the wiring of the check.
    fake_flynotes.gateway_version = "99.0.0"
    seen: list[tuple[str, Any]] = []
    wheel = tmp_path / "pacs_gateway-99.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("gateway/migrations/versions/0001_a.py", 'revision = "g0001"\n')

    def fake_install(version: str, source: UpdateSource, **kw: Any) -> None:
        seen.append((version, kw["dist_name"]))

    monkeypatch.setattr("r4.selfupdate.download_wheel", lambda *a, **kw: wheel)
    monkeypatch.setattr("r4.selfupdate.install_version", fake_install)
    monkeypatch.setattr("r4.selfupdate._installed_after", lambda *a: "99.0")
    check = licence_check(
        flynotes_client,
        drain=lambda: seen.append(("drain", None)),
        source=UpdateSource(index_url="http://index"),
        database_revisions=lambda: seen.append(("revisions", None)) or {"g0001"},
        state_file=tmp_path / "attempts.json",
    )
    with pytest.raises(RestartRequested) as info:
        check()
    assert info.value.exit_code == 75
    assert seen == [("drain", None), ("revisions", None), ("99.0.0", "pacs-gateway")]
