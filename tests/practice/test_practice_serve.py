"""`pacs-gateway serve` with the practice side configured, as a real process: R4 (SQLite),
the fake Flynotes, SQS on a moto server, a Rollbar recorder and the test Orthanc."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from demo_studies import LATIN1_PATIENT_ID, PATIENTS
from gateway_testkit import gateway_settings
from orthanc_server import free_port
from r4_testkit import LICENCE, Queues, RollbarRecorder, wait_until
from serve_process import ServeProcess

from gateway.core.models import idempotency_key
from gateway.practice.side import FLYNOTES_KEY_ID
from gateway.service import Gateway
from r4.database import create_r4_engine
from r4.handlers import RESTART_EXIT_CODE
from r4.mapping import R4Mapping
from r4.patients import iter_patient_records
from r4.selfupdate import installed_version
from testkit.fake_flynotes import FakeFlynotes
from testkit.sample_data import generate_practice, update_patient

# The id rule's chart number in its own column: `[r4] chart_number` remapped in the settings.
MAPPING = R4Mapping(chart_number="ChartNo")
FIRST_ID = 48_213_001  # long ids, so a leaked id cannot hide among other numbers
FETCH_CHART = "1001"  # with prefix "R4-": the demo patient R4-1001 (2 studies, 5 images)
SECRET = {
    "family": "Kowalczyk-Núñez",
    "given": "Zoëlle",
    "birth": date(1961, 7, 14),
    "chart": "CH-99812",
}


@pytest.fixture
def r4_practice(tmp_path: Path) -> Iterator[tuple[str, list[int]]]:
    """An R4 database; returns its URL and the patient ids. The first active patient
    has chart number FETCH_CHART, the second distinctive details for the leak check."""
    url = f"sqlite:///{tmp_path / 'sys2000.db'}"
    engine = create_r4_engine(url, MAPPING)
    generate_practice(engine, 300, seed=11, first_id=FIRST_ID)
    active = [r.id for r in iter_patient_records(engine, include_inactive=True)]
    # The demo PACS's person under R4-1001: the matcher confirms the id rule's hit only
    # when the demographics agree.
    demo = next(p for p in PATIENTS if p.patient_id == LATIN1_PATIENT_ID)
    family, given = demo.name.split("^")
    born = date(int(demo.birth_date[:4]), int(demo.birth_date[4:6]), int(demo.birth_date[6:]))
    update_patient(
        engine,
        active[0],
        chart_number=FETCH_CHART,
        surname=family,
        forename=given,
        birth_date=born,
        sex=demo.sex,
    )
    update_patient(
        engine,
        active[1],
        surname=SECRET["family"],
        forename=SECRET["given"],
        birth_date=SECRET["birth"],
        chart_number=SECRET["chart"],
    )
    engine.dispose()
    yield url, active


@pytest.fixture
def serve_process() -> Iterator[list[ServeProcess]]:
    running: list[ServeProcess] = []
    yield running
    for process in running:
        process.kill()


def _job_for_request(gateway: Gateway, request_id: str) -> str | None:
    """The job the request's Idempotency-Key names; None until it names one (the key is
    claimed, with an empty job id, just before its job is queued)."""
    with gateway.engine.connect() as conn:
        job_id = conn.scalar(
            sa.select(idempotency_key.c.job_id).where(
                idempotency_key.c.key == request_id, idempotency_key.c.api_key_id == FLYNOTES_KEY_ID
            )
        )
    return job_id or None


def _finished_job(gateway: Gateway, request_id: str, timeout: float = 60) -> Any:
    def done() -> bool:
        job_id = _job_for_request(gateway, request_id)
        return job_id is not None and gateway.jobs.get(job_id).state in ("succeeded", "failed")

    assert wait_until(done, timeout, interval=0.1), request_id
    return gateway.jobs.get(_job_for_request(gateway, request_id))


def _handler_failures(recorder: RollbarRecorder) -> list[dict[str, Any]]:
    return [
        i for i in recorder.items if i["data"].get("custom", {}).get("where") == "command handler"
    ]


def test_serve_runs_the_practice_side_and_restarts_with_75(
    tmp_path,
    monkeypatch,
    r4_practice,
    practice_moto_endpoint,
    rollbar_recorder,
    orthanc_running,
    demo_catalog,
    gateway_scp_port,
    serve_process,
):
    r4_url, active = r4_practice
    queues = Queues(practice_moto_endpoint, max_receives=5)
    # Secrets travel in the environment, as in production (a TOML dump would mask them).
    monkeypatch.setenv("PACS_GATEWAY_FLYNOTES_LICENCE_KEY", LICENCE)
    monkeypatch.setenv("PACS_GATEWAY_ROLLBAR_ACCESS_TOKEN", "token-for-tests")
    with FakeFlynotes(
        LICENCE, gateway_version=installed_version() or "0", queue_url=queues.url
    ) as flynotes:
        settings = gateway_settings(
            tmp_path / "gw",
            gateway_scp_port,
            orthanc_running,
            workers=1,
            r4={"database_url": r4_url, "chart_number": "ChartNo"},
            flynotes_url=flynotes.url,
            flynotes_licence_key=LICENCE,
            rollbar_access_token="token-for-tests",
            rollbar_environment="test",
            rollbar_endpoint=rollbar_recorder.endpoint,
            sqs_endpoint_url=practice_moto_endpoint,
            sqs_wait_seconds=1,
            upload_batch_size=100,
            pacs_id_rule_prefix="R4-",
        )
        serve = ServeProcess(settings, tmp_path)
        serve_process.append(serve)
        serve.start()
        reader = Gateway(settings)  # not started: reads the job tables serve writes

        # (a) the bulk upload at start sends every active patient
        assert flynotes.wait_for(lambda s: set(s.patients) == set(active), 20), serve.log_tail()

        # (b) patient-sync: the full record goes to Flynotes
        queues.send({"type": "patient-sync", "patient_id": active[2]})
        assert flynotes.wait_for(lambda s: active[2] in s.synced, 15), serve.log_tail()

        # (c) fetch-studies for the R4 patient whose chart number maps to R4-1001
        queues.send({"type": "fetch-studies", "patient_id": active[0], "request_id": "req-1"})
        job = _finished_job(reader, "req-1")
        assert job.state == "succeeded", (job.message, serve.log_tail())
        wanted = demo_catalog.studies_for(LATIN1_PATIENT_ID)
        assert job.progress["studies_done"] == len(wanted)
        for study in wanted:
            assert reader.index.study(study.study_uid).instance_count == study.instance_count

        # ...and an R4 patient who does not exist: a failed job with a sentence, no data
        queues.send({"type": "fetch-studies", "patient_id": 999_999_999, "request_id": "req-2"})
        job = _finished_job(reader, "req-2")
        assert job.state == "failed"
        assert "R4 has no patient with this id" in job.message
        assert "999999999" not in job.message

        # (d) a failing message reaches Rollbar, scrubbed
        flynotes.fail_next(1, status=400)
        queues.send({"type": "patient-sync", "patient_id": active[1]})
        assert wait_until(lambda: _handler_failures(rollbar_recorder), 15), serve.log_tail()
        failure = _handler_failures(rollbar_recorder)[0]
        assert failure["data"]["custom"]["type"] == "patient-sync"
        assert failure["data"]["body"]["trace"]["exception"]["class"] == "FlynotesRequestError"
        sent = rollbar_recorder.everything().lower()
        for leak in (
            SECRET["family"],
            "Kowalczyk",
            SECRET["given"],
            SECRET["chart"],
            str(active[1]),
            "1961-07-14",
            "19610714",
            LICENCE,
        ):
            assert leak.lower() not in sent, f"{leak!r} reached Rollbar"

        # (e) restart: graceful shutdown, exit code 75, the message is gone from the queue
        queues.send({"type": "restart", "reason": "test"})
        assert serve.process is not None
        assert serve.process.wait(30) == RESTART_EXIT_CODE, serve.log_tail()
        log = serve.log_path.read_text()
        assert "Application shutdown complete" in log
        assert "stopping to restart (exit code 75)" in log
        # Deleted before exiting; what remains is (d)'s message, waiting for its retry.
        assert queues.count(queues.url) == 1


def test_serve_without_practice_settings_starts_no_practice_threads(
    tmp_path, orthanc_running, serve_process
):
    settings = gateway_settings(tmp_path / "gw", free_port(), orthanc_running, workers=1)
    serve = ServeProcess(settings, tmp_path)
    serve_process.append(serve)
    serve.start()
    assert wait_until(lambda: "practice side off" in serve.log_tail(200), 10), serve.log_tail()
    assert serve.stop()
    log = serve.log_path.read_text()
    assert "practice side started" not in log
    assert "Rollbar" not in log


def test_serve_with_an_invalid_licence_exits_78_and_tells_rollbar(
    tmp_path,
    r4_practice,
    orthanc_running,
    practice_moto_endpoint,
    rollbar_recorder,
    monkeypatch,
    serve_process,
):
    r4_url, _ = r4_practice
    monkeypatch.setenv("PACS_GATEWAY_FLYNOTES_LICENCE_KEY", "not-this-practices-licence")
    monkeypatch.setenv("PACS_GATEWAY_ROLLBAR_ACCESS_TOKEN", "token-for-tests")
    with FakeFlynotes(LICENCE) as flynotes:
        settings = gateway_settings(
            tmp_path / "gw",
            free_port(),
            orthanc_running,
            workers=1,
            r4={"database_url": r4_url, "chart_number": "ChartNo"},
            flynotes_url=flynotes.url,
            flynotes_licence_key="not-this-practices-licence",
            rollbar_access_token="token-for-tests",
            rollbar_environment="test",
            rollbar_endpoint=rollbar_recorder.endpoint,
            sqs_endpoint_url=practice_moto_endpoint,
        )
        serve = ServeProcess(settings, tmp_path)
        serve_process.append(serve)
        with pytest.raises(RuntimeError, match="serve exited"):
            serve.start()
        assert serve.process is not None
        assert serve.process.wait(30) == 78, serve.log_tail()
        assert flynotes.state.initialisations <= 1  # refused once, not retried in a loop
        assert not flynotes.state.patients  # nothing uploaded, no loop started
    assert "Flynotes does not recognise this practice's licence key" in serve.log_tail()
    assert wait_until(lambda: "licence key" in rollbar_recorder.everything(), 10)
    assert "not-this-practices-licence" not in rollbar_recorder.everything()
