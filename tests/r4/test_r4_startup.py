"""Start-up in the seed's order, against the fake Flynotes, a moto SQS queue and the local
Rollbar recorder: nothing starts before R4 and the licence pass, an invalid licence is fatal
with exit 78, uncaught errors in any thread reach Rollbar scrubbed, 24 h of uptime restarts."""

from __future__ import annotations

import socket
import sys
import threading
from typing import Any

import pytest
from r4_testkit import LICENCE, wait_until

from gateway.practice import reporting
from gateway.practice.reporting import RollbarReporter
from r4.check import check_r4
from r4.commands import CommandLoop, LoopSettings
from r4.database import create_r4_engine
from r4.flynotes import FlynotesClient, LicenceInfo
from r4.handlers import RESTART_EXIT_CODE, PracticeCommandHandler, RestartRequested
from r4.mapping import R4Mapping
from r4.patients import iter_patient_records
from r4.startup import (
    LICENCE_EXIT_CODE,
    MAPPING_EXIT_CODE,
    StartupFailed,
    StartupSteps,
    Uptime,
    install_excepthooks,
    run_startup,
)
from r4.sync import bulk_upload_patients
from testkit.fake_flynotes import FakeFlynotes


class Recorded:
    def __init__(self) -> None:
        self.steps: list[str] = []
        self.reports: list[tuple[str, dict[str, Any]]] = []

    def report(self, sentence: str, extra: dict[str, Any]) -> None:
        self.reports.append((sentence, extra))
        reporting.report_message(sentence, "critical", extra)


def _steps(
    engine, client: FlynotesClient, rec: Recorded, *, start_loops=None, ensure=None
) -> StartupSteps:
    def step(name: str, action):
        def run(*args):
            rec.steps.append(name)
            return action(*args)

        return run

    return StartupSteps(
        configure_reporting=step("reporting", lambda: None),
        check_r4=step("r4", lambda: check_r4(engine)),
        initialise=step("licence", lambda: client.initialise("0.1.0")),
        ensure_version=step("version", ensure or (lambda info: None)),
        first_upload=step("upload", lambda: bulk_upload_patients(engine, client, batch_size=50)),
        start_loops=step("loops", start_loops or (lambda: None)),
    )


def test_start_up_runs_in_order_and_the_loop_starts_last(
    practice, fake_flynotes, flynotes_client, queues, rollbar_recorder
):
    engine, summary = practice
    fake_flynotes.queue_url = queues.url
    rec = Recorded()
    stop = threading.Event()
    uploaded_when_loop_started: list[int] = []
    handler = PracticeCommandHandler(
        engine=engine,
        flynotes=flynotes_client,
        create_fetch_job=lambda c: None,
        reporter=RollbarReporter(),
        stop=stop,
    )
    loop = CommandLoop(
        handler,
        lambda: flynotes_client.initialise("0.1.0").sqs,
        settings=LoopSettings(
            wait_time_seconds=1, endpoint_url=queues.client.meta.endpoint_url, retry_delay_seconds=0
        ),
    )
    threads: list[threading.Thread] = []

    def start_loops() -> None:
        uploaded_when_loop_started.append(len(fake_flynotes.state.patients))
        thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
        thread.start()
        threads.append(thread)

    try:
        info = run_startup(
            _steps(engine, flynotes_client, rec, start_loops=start_loops), rec.report
        )
        assert isinstance(info, LicenceInfo)
        assert rec.steps == ["reporting", "r4", "licence", "version", "upload", "loops"]
        # The first bulk upload is complete before any loop runs.
        assert uploaded_when_loop_started == [summary.patients]
        # The SQS loop, once started, handles commands from the moto queue.
        patient = next(iter_patient_records(engine)).id
        queues.send({"type": "patient-sync", "patient_id": patient})
        assert fake_flynotes.wait_for(lambda s: patient in s.synced, 15)
        assert rec.reports == []
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)


def test_an_invalid_licence_is_fatal_reported_and_starts_nothing(
    practice, rollbar_recorder, tmp_path
):
    engine, _ = practice
    rec = Recorded()
    with (
        FakeFlynotes("the-real-licence") as flynotes,
        FlynotesClient(flynotes.url, LICENCE, max_attempts=3, backoff_initial=0.01) as client,
    ):
        with pytest.raises(StartupFailed) as failure:
            run_startup(_steps(engine, client, rec), rec.report)
        assert flynotes.state.initialisations <= 1, "a refused licence is not retried"
    assert failure.value.exit_code == LICENCE_EXIT_CODE == 78
    assert str(failure.value) == (
        "Flynotes does not recognise this practice's licence key: set the right "
        "flynotes_licence_key; restarting will not help until then."
    )
    assert rec.steps == ["reporting", "r4", "licence"]  # no update, no upload, no loop
    [item] = rollbar_recorder.wait_for(1)
    assert "licence key" in str(item) and LICENCE not in rollbar_recorder.everything()


def test_r4_unreachable_or_mismatched_stops_before_the_licence(
    tmp_path, fake_flynotes, flynotes_client, rollbar_recorder
):
    rec = Recorded()
    missing = create_r4_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'sys2000.db'}")
    with pytest.raises(StartupFailed) as failure:
        run_startup(_steps(missing, flynotes_client, rec), rec.report)
    assert failure.value.exit_code == RESTART_EXIT_CODE  # R4 may come back: restart later
    assert "sys2000.db" in str(failure.value) and "\n" not in str(failure.value)
    assert rec.steps == ["reporting", "r4"] and fake_flynotes.state.initialisations == 0

    rec = Recorded()
    wrong = create_r4_engine(f"sqlite:///{tmp_path / 'r4.db'}", R4Mapping(forename="FirstName"))
    with wrong.begin() as conn:
        conn.exec_driver_sql('CREATE TABLE "Patients" ("PatientCode" INTEGER, "Forename" TEXT)')
    with pytest.raises(StartupFailed) as failure:
        run_startup(_steps(wrong, flynotes_client, rec), rec.report)
    assert failure.value.exit_code == MAPPING_EXIT_CODE
    assert "run `pacs-gateway check`" in str(failure.value)
    assert "r4 column forename" in str(failure.value)
    assert fake_flynotes.state.initialisations == 0


def test_a_self_update_ends_start_up_for_a_restart(practice, flynotes_client, rollbar_recorder):
    engine, _ = practice
    rec = Recorded()

    def update(info: LicenceInfo) -> None:
        raise RestartRequested(f"updated to {info.gateway_version}")

    with pytest.raises(RestartRequested):
        run_startup(_steps(engine, flynotes_client, rec, ensure=update), rec.report)
    assert rec.steps[-1] == "version"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_uncaught_errors_in_any_thread_reach_rollbar_scrubbed(rollbar_recorder):
    seen: list[BaseException] = []

    def report(exc: BaseException) -> None:
        seen.append(exc)
        reporting.report_exception(exc, extra={"where": "uncaught"})

    before = (sys.excepthook, threading.excepthook)
    restore = install_excepthooks(report)
    try:
        # A busy port, as `serve` meets it at start-up: the bind error is uncaught.
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port))
                except OSError as exc:
                    sys.excepthook(type(exc), exc, exc.__traceback__)

        def worker() -> None:
            # The reporter scrubs values it finds under patient-ish names in the frames.
            family_name, given_name = "Kowalczyk-Núñez", "Zoëlle"
            raise RuntimeError(f"worker crashed for patient {given_name} {family_name}")

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(5)
        items = rollbar_recorder.wait_for(2)
    finally:
        restore()
    assert (sys.excepthook, threading.excepthook) == before
    assert [type(e) for e in seen] == [OSError, RuntimeError]
    assert len(items) == 2
    everything = rollbar_recorder.everything()
    assert "Address already in use" in everything or "98" in everything
    assert "Zoëlle" not in everything and "Kowalczyk" not in everything


def test_max_uptime_asks_for_a_restart():
    now = [1000.0]
    uptime = Uptime(24 * 3600.0, clock=lambda: now[0])
    uptime.check()  # not yet
    now[0] += 24 * 3600.0 - 1
    assert not uptime.expired()
    now[0] += 1
    with pytest.raises(RestartRequested) as restart:
        uptime.check()
    assert restart.value.exit_code == RESTART_EXIT_CODE
    assert wait_until(uptime.expired, 1)
