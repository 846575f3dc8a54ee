"""Job lifecycle log lines: submitted by whom, started, retries with reason and time,
the outcome with counts, bytes and duration; never the job's parameters."""

from __future__ import annotations

import logging
from datetime import timedelta

SECRET_PARAM = "PATIENT-IN-PARAMS-123"


def lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "jobs"]


def test_lifecycle_lines_carry_fields_not_params(store, caplog):
    caplog.set_level(logging.INFO, logger="jobs")
    job, _ = store.submit("fetch", {"pacs_patient_id": SECRET_PARAM}, submitted_by="flynotes")
    store.claim("w1", ["fetch"], 30)
    store.report(job.id, "w1", progress={"instances_received": 40, "bytes": 1000})
    retry_at = store.now() + timedelta(seconds=30)
    store.schedule_retry(job.id, "w1", retry_at, "Waiting to retry", "The PACS refused.")
    store.claim("w1", ["fetch"], 30)  # not due yet: nothing claimed

    events = [r.event for r in lines(caplog)]
    assert events == ["submitted", "started", "retry"]
    submitted, started, retry = lines(caplog)
    assert submitted.key_name == "flynotes" and submitted.kind == "fetch"
    assert submitted.job_id == job.id
    assert started.attempt == 1
    assert retry.reason == "The PACS refused."
    assert retry.next_attempt_at == retry_at.isoformat(timespec="seconds")
    assert "The PACS refused." in retry.getMessage()
    assert all(SECRET_PARAM not in r.getMessage() for r in caplog.records)


def test_outcome_lines_have_counts_bytes_and_duration(store, caplog):
    caplog.set_level(logging.INFO, logger="jobs")
    ok, _ = store.submit("fetch", {"pacs_patient_id": SECRET_PARAM})
    store.claim("w1", ["fetch"], 30)
    progress = {"studies_done": 2, "instances_received": 120, "bytes": 5_000_000}
    store.report(ok.id, "w1", progress=progress)
    store.succeed(ok.id, "w1")
    bad, _ = store.submit("fetch", {"pacs_patient_id": "other"})
    store.claim("w1", ["fetch"], 30)
    store.fail(bad.id, "w1", "Failed", error="The study is incomplete on the PACS.")

    by_event = {r.event: r for r in lines(caplog)}
    done = by_event["succeeded"]
    assert (done.studies, done.instances, done.bytes) == (2, 120, 5_000_000)
    assert done.duration_s >= 0 and done.levelno == logging.INFO
    failed = by_event["failed"]
    assert failed.levelno == logging.ERROR
    assert failed.reason == "The study is incomplete on the PACS."
    assert (failed.instances, failed.bytes) == (0, 0)
    assert by_event["submitted"].key_name == "-"
