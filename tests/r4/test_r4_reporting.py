"""gateway.practice.reporting: what actually arrives at (a local stand-in for) Rollbar."""

from __future__ import annotations

import logging
import threading
from datetime import date

import pytest
from r4_testkit import wait_until

from gateway.practice import reporting
from r4.commands import CommandLoop, LoopSettings
from r4.flynotes import FlynotesClient
from r4.patients import Address, Contact, PatientDetails
from r4.records import PatientRecord

RECORD = PatientRecord(
    id=48213977,
    chart_number="CH-99812",
    family_name="Kowalczyk-Núñez",
    given_name="Zoë",
    birth_date=date(1961, 7, 14),
    sex="F",
    other_ids=("9434765919",),
)
DETAILS = PatientDetails(
    record=RECORD,
    address=Address(line1="12 Rue de l'Église", postcode="BS7 8QP"),
    contact=Contact(mobile_phone="07700 900461", email="zoe.k@example.org"),
)
LEAKS = (
    "Kowalczyk",
    "Núñez",
    "Nunez",
    "Zoë",
    "48213977",
    "CH-99812",
    "1961-07-14",
    "19610714",
    "14/07/1961",
    "1961, 7, 14",
    "9434765919",
    "Église",
    "BS7 8QP",
    "07700 900461",
    "zoe.k@example.org",
    "KOWALCZYK",
)


def assert_no_leak(text: str) -> None:
    found = [leak for leak in LEAKS if leak.lower() in text.lower()]
    assert not found, f"patient data reached Rollbar: {found}"


def _fail_with(details: PatientDetails) -> None:
    record = details.record
    # What third-party code does: put the data it choked on into the exception text.
    raise ValueError(
        f"could not store {record!r} for PatientName={record.family_name.upper()}"
        f"^{record.given_name} born {record.birth_date:%Y%m%d}, "
        f"mail {details.contact.email}"
    )


def test_exception_with_patient_record_arrives_scrubbed(rollbar_recorder):
    try:
        _fail_with(DETAILS)
    except ValueError as exc:
        reporting.report_exception(
            exc, extra={"patient": RECORD, "job_id": 17, "birth_date": "1961-07-14"}
        )
    item = rollbar_recorder.wait_for(1)[0]
    assert_no_leak(rollbar_recorder.everything())
    trace = item["data"]["body"]["trace"]
    assert trace["exception"]["class"] == "ValueError"
    assert "could not store" in trace["exception"]["message"]
    assert all("locals" not in frame for frame in trace["frames"])
    assert item["data"]["custom"]["job_id"] == 17  # non-patient context survives
    assert item["access_token"] == "test-token" and item["data"]["environment"] == "test"


def test_failing_command_handler_given_a_patient_sends_no_patient_data(
    rollbar_recorder, moto_endpoint, queues, fake_flynotes
):
    fake_flynotes.queue_url = queues.url
    stop = threading.Event()

    def handler(command: object) -> None:
        patient = DETAILS  # a local holding the record, as a real handler would
        _fail_with(patient)

    with FlynotesClient(fake_flynotes.url, "licence-for-tests") as client:
        loop = CommandLoop(
            handler,
            lambda: client.initialise("0.1.0").sqs,
            reporter=reporting.RollbarReporter(),
            settings=LoopSettings(
                wait_time_seconds=1, retry_delay_seconds=30, endpoint_url=moto_endpoint
            ),
        )
        queues.send({"type": "patient-sync", "patientId": RECORD.id})
        thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
        thread.start()
        try:
            rollbar_recorder.wait_for(1)
        finally:
            stop.set()
            thread.join(timeout=5)
    assert_no_leak(rollbar_recorder.everything())
    assert "ValueError" in rollbar_recorder.everything()
    assert queues.count(queues.url) == 1  # kept for redelivery


def test_messages_and_extras_are_scrubbed(rollbar_recorder):
    reporting.report_message(
        "lookup failed for Kowalczyk-Núñez, dob 14/07/1961, tel 07700 900461",
        level="warning",
        extra={"PatientID": "CH-99812", "details": DETAILS, "count": 3},
    )
    item = rollbar_recorder.wait_for(1)[0]
    assert_no_leak(rollbar_recorder.everything())
    assert item["data"]["level"] == "warning" and item["data"]["custom"]["count"] == 3


def test_logging_handler_reports_errors_only_and_scrubs_arguments(rollbar_recorder):
    logger = logging.getLogger("tests.r4.reporting")
    logger.propagate = False
    handler = reporting.install_logging_handler(logger)
    try:
        logger.warning("not reported %s", RECORD)
        logger.error("sync failed for %s", RECORD)
        try:
            _fail_with(DETAILS)
        except ValueError:
            logger.exception("handler crashed")
        items = rollbar_recorder.wait_for(2)
    finally:
        logger.removeHandler(handler)
    assert len(items) == 2
    assert items[0]["data"]["body"]["message"]["body"].startswith("sync failed for")
    assert items[1]["data"]["body"]["trace"]["exception"]["class"] == "ValueError"
    assert_no_leak(rollbar_recorder.everything())


def test_sensitive_values_block_redacts_free_text(rollbar_recorder):
    with reporting.sensitive_values("Marguerite", date(1999, 1, 2)):
        reporting.report_message("Marguerite's appointment moved", level="info")
    reporting.report_message("Marguerite unscoped", level="info")
    items = rollbar_recorder.wait_for(2)
    assert "Marguerite" not in items[0]["data"]["body"]["message"]["body"]
    assert "Marguerite" in items[1]["data"]["body"]["message"]["body"]


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("(0010,0010) Patient's Name PN: 'DOE^JANE'", "(0010,0010)"),
        ("PatientID=ABC123 StudyDate ok", "StudyDate ok"),
        ("[SQL: SELECT 1] [parameters: ('Doe', '1961-07-14')]", "[SQL: SELECT 1]"),
        ("PatientRecord(id=5, chart_number='C1', family_name='Doe', given_name='J')", "id=5"),
    ],
)
def test_scrub_text_patterns(text, kept):
    cleaned = reporting.scrub_text(text)
    assert kept in cleaned
    assert "Doe" not in cleaned and "DOE" not in cleaned and "ABC123" not in cleaned


def test_payload_envelope_is_left_intact():
    payload = {
        "access_token": "t",
        "data": {
            "uuid": "1961-07-14",
            "server": {"host": "r4"},
            "custom": {"given_name": "Ann", "n": 1},
        },
    }
    cleaned = reporting.scrub_payload(payload)
    assert cleaned["data"]["uuid"] == "1961-07-14" and cleaned["data"]["server"]["host"] == "r4"
    assert cleaned["data"]["custom"] == {"given_name": reporting.REDACTED, "n": 1}
    assert payload["data"]["custom"]["given_name"] == "Ann"  # the input is not modified


def test_thread_handler_flushes(rollbar_recorder):
    reporting.configure("test-token", "test", endpoint=rollbar_recorder.endpoint, handler="thread")
    try:
        reporting.report_message("background", level="info")
        reporting.flush()
        assert wait_until(lambda: len(rollbar_recorder.items) == 1, timeout=5)
    finally:
        reporting.configure(
            "test-token", "test", endpoint=rollbar_recorder.endpoint, handler="blocking"
        )
