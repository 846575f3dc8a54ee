"""Every message type end to end: moto SQS over HTTP -> CommandLoop -> R4 (SQLite) -> fake
Flynotes / Rollbar recorder."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from r4_testkit import wait_until

from gateway.practice.reporting import RollbarReporter
from r4.commands import CommandLoop, LoopSettings, make_sqs_client
from r4.flynotes import AwsCredentials, SqsAccess
from r4.handlers import PracticeCommandHandler, RestartRequested
from r4.messages import Command, FetchStudies
from r4.patients import iter_patient_records
from testkit.sample_data import NOTES


class Harness:
    def __init__(self, practice, fake_flynotes, flynotes_client, queues) -> None:
        self.engine, self.summary = practice
        self.flynotes = fake_flynotes
        self.client = flynotes_client
        self.queues = queues
        fake_flynotes.queue_url = queues.url
        self.fetches: list[FetchStudies] = []
        self.stop = threading.Event()
        self.handler = PracticeCommandHandler(
            engine=self.engine,
            flynotes=flynotes_client,
            create_fetch_job=self.fetches.append,
            reporter=RollbarReporter(),
            upload_batch_size=64,
            stop=self.stop,
        )
        self.raised: list[BaseException] = []

    def loop(
        self, handler: Callable[[Command], None] | None = None, **settings: Any
    ) -> CommandLoop:
        defaults: dict[str, Any] = {
            "wait_time_seconds": 1,
            "retry_delay_seconds": 0,
            "endpoint_url": self.queues.client.meta.endpoint_url,
            "error_backoff_seconds": 0.05,
        }
        return CommandLoop(
            handler or self.handler,
            lambda: self.client.initialise("0.1.0").sqs,
            reporter=RollbarReporter(),
            settings=LoopSettings(**{**defaults, **settings}),
        )

    @contextlib.contextmanager
    def running(self, loop: CommandLoop | None = None) -> Iterator[threading.Thread]:
        loop = loop or self.loop()

        def run() -> None:
            try:
                loop.run(self.stop)
            except BaseException as exc:
                self.raised.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            yield thread
        finally:
            self.stop.set()
            thread.join(timeout=5)
            assert not thread.is_alive(), "the loop did not stop promptly"

    def queue_empty(self) -> bool:
        return self.queues.count(self.queues.url) == 0


@pytest.fixture
def h(practice, fake_flynotes, flynotes_client, queues, rollbar_recorder) -> Harness:
    return Harness(practice, fake_flynotes, flynotes_client, queues)


def _some_patient(h: Harness) -> int:
    return next(iter_patient_records(h.engine, 10)).id


def test_patient_sync(h):
    patient_id = _some_patient(h)
    with h.running():
        h.queues.send({"type": "patient-sync", "patientId": patient_id})
        assert h.flynotes.wait_for(lambda s: patient_id in s.synced)
        assert wait_until(h.queue_empty)
    body = h.flynotes.state.synced[patient_id]
    assert body["id"] == patient_id and "medical_history" in body


def test_patient_sync_cues_a_fetch_and_a_failing_one_keeps_nothing(h, caplog):
    patient_id = _some_patient(h)
    cued: list[int] = []
    h.handler.on_patient_sync = cued.append
    with h.running():
        h.queues.send({"type": "patient-sync", "patientId": patient_id})
        assert wait_until(lambda: cued == [patient_id])
        assert wait_until(h.queue_empty)

    def broken(_patient_id: int) -> None:
        raise RuntimeError(f"no PACS for {_patient_id}")

    h.handler.on_patient_sync = broken
    h.stop.clear()
    with h.running():
        h.queues.send({"type": "patient-sync", "patientId": patient_id})
        assert wait_until(lambda: "queuing a fetch failed: RuntimeError" in caplog.text)
        assert wait_until(h.queue_empty)  # the sync is done: the message is not kept
    (line,) = [r.getMessage() for r in caplog.records if "queuing a fetch" in r.getMessage()]
    assert line == "patient-sync: queuing a fetch failed: RuntimeError"  # no patient id


def test_bulk_upload(h):
    with h.running():
        h.queues.send({"type": "bulk-upload-patients"})
        assert h.flynotes.wait_for(lambda s: len(s.patients) == h.summary.patients)
        assert wait_until(h.queue_empty)


def test_fetch_studies_calls_the_injected_job_creator(h):
    with h.running():
        h.queues.send(
            {
                "type": "fetch-studies",
                "patientId": 12,
                "dateFrom": "2020-01-01",
                "requestId": "req-1",
            }
        )
        assert wait_until(lambda: len(h.fetches) == 1)
        assert wait_until(h.queue_empty)
    assert h.fetches[0].patient_id == 12 and h.fetches[0].request_id == "req-1"


def test_restart_deletes_the_message_then_ends_the_loop(h):
    with h.running() as thread:
        h.queues.send({"type": "restart", "reason": "ops"})
        thread.join(timeout=10)
        assert not thread.is_alive()
    assert len(h.raised) == 1 and isinstance(h.raised[0], RestartRequested)
    assert h.raised[0].exit_code == 75
    assert h.queue_empty()


def test_test_message_reaches_rollbar(h, rollbar_recorder):
    with h.running():
        h.queues.send({"type": "test", "message": "hello from ops"})
        items = rollbar_recorder.wait_for(1)
    assert items[0]["data"]["body"]["message"]["body"] == "hello from ops"
    assert items[0]["data"]["level"] == "info"


def test_questionnaire_uploads_report_preset_texts_only(h, rollbar_recorder):
    with h.running():
        h.queues.send({"type": "questionnaire-questions-upload"})
        h.queues.send({"type": "questionnaire-answers-upload"})
        items = rollbar_recorder.wait_for(2)
        assert wait_until(h.queue_empty)
    custom = {k: v for item in items for k, v in item["data"]["custom"].items()}
    assert "Do you smoke?" in custom["questions"]
    assert custom["answers"] == sorted(["Yes", "No", "True", "False", "Don't know", "N/A"])
    everything = rollbar_recorder.everything()
    assert not any(note in everything for note in NOTES if note)


def test_poisoned_messages_do_not_block_and_end_in_the_dead_letter_queue(h, rollbar_recorder):
    patient_id = _some_patient(h)
    poison = [
        "{not json",
        '{"type": "launch-missiles"}',
        '{"type": "patient-sync"}',
        '{"type": "patient-sync", "patientId": 999999999}',
    ]  # last: handler fails
    with h.running():
        for body in poison:
            h.queues.send(body)
        h.queues.send({"type": "patient-sync", "patientId": patient_id})
        assert h.flynotes.wait_for(lambda s: patient_id in s.synced)
        # maxReceiveCount=2: each poison message is received twice, then moved by SQS.
        assert wait_until(lambda: h.queues.count(h.queues.dlq_url) == len(poison), timeout=20)
        assert wait_until(h.queue_empty)
    assert sorted(h.queues.dead_letters()) == sorted(poison)
    bodies = rollbar_recorder.everything()
    assert "malformed message" in bodies and "unknown message type" in bodies
    assert "PatientNotFound" in bodies


def test_flynotes_outage_loses_no_patient(h):
    # 3 failures are absorbed by the client's retries; 7 outlast one delivery's 5 attempts,
    # so the message is redelivered and the upload completes on the second receive.
    patient_id = _some_patient(h)
    with h.running():
        h.flynotes.fail_next(3)
        h.queues.send({"type": "patient-sync", "patientId": patient_id})
        assert h.flynotes.wait_for(lambda s: patient_id in s.synced)
        assert wait_until(h.queue_empty)
        h.flynotes.fail_next(7)
        h.queues.send({"type": "bulk-upload-patients"})
        assert h.flynotes.wait_for(lambda s: len(s.patients) == h.summary.patients, timeout=20)
        assert wait_until(h.queue_empty)
    assert h.queues.count(h.queues.dlq_url) == 0


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_credentials_are_refreshed_before_they_expire(h):
    clock = FakeClock()
    h.flynotes.now = clock  # Flynotes issues 36 h credentials relative to the same clock
    built: list[str] = []

    def factory(access: SqsAccess, endpoint: str | None) -> Any:
        built.append(access.credentials.access_key_id)
        return make_sqs_client(access, endpoint)

    loop = CommandLoop(
        h.handler,
        lambda: h.client.initialise("0.1.0").sqs,
        settings=LoopSettings(wait_time_seconds=0, endpoint_url=h.queues.client.meta.endpoint_url),
        clock=clock,
        client_factory=factory,
    )
    loop.poll_once()
    first_expiry = loop.credentials_expire_at
    assert first_expiry == clock.now + timedelta(hours=36)
    clock.now += timedelta(hours=34, minutes=59)
    loop.poll_once()
    assert loop.credential_refreshes == 1
    clock.now += timedelta(minutes=2)  # 59 minutes left: under the 1 h margin
    loop.poll_once()
    assert loop.credential_refreshes == 2 and len(set(built)) == 2
    assert loop.credentials_expire_at == clock.now + timedelta(hours=36)
    assert loop.credentials_expire_at > first_expiry
    # Still works with the rebuilt client.
    patient_id = _some_patient(h)
    h.queues.send({"type": "patient-sync", "patientId": patient_id})
    assert wait_until(lambda: loop.poll_once() > 0 or patient_id in h.flynotes.state.synced)
    assert h.flynotes.wait_for(lambda s: patient_id in s.synced)


def test_rejected_credentials_are_replaced_on_the_next_poll():
    clock = FakeClock()
    calls: list[int] = []

    class Rejecting:
        def receive_message(self, **kw: Any) -> dict[str, Any]:
            raise ClientError(
                {"Error": {"Code": "ExpiredToken", "Message": "expired"}}, "ReceiveMessage"
            )

    def access() -> SqsAccess:
        calls.append(1)
        creds = AwsCredentials("AK", "SK", "T", clock.now + timedelta(hours=36))
        return SqsAccess("http://q", "eu-west-2", creds)

    loop = CommandLoop(lambda c: None, access, clock=clock, client_factory=lambda a, e: Rejecting())
    for _ in range(2):
        with pytest.raises(ClientError):
            loop.poll_once()
    assert len(calls) == 2


def test_stop_is_prompt_while_idle(h):
    with h.running() as thread:
        assert wait_until(lambda: h.client is not None and h.flynotes.state.initialisations == 1)
        h.stop.set()
        thread.join(timeout=3)
        assert not thread.is_alive()


def test_failed_refresh_keeps_polling_while_credentials_last():
    clock = FakeClock()
    reports: list[Any] = []
    flynotes_up = [True]

    class Idle:
        def receive_message(self, **kw: Any) -> dict[str, Any]:
            return {}

    class Reporter:
        def report_message(self, *a: Any, **kw: Any) -> None:
            reports.append(a)

        def report_exception(self, exc: BaseException | None = None, **kw: Any) -> None:
            reports.append(exc)

    def access() -> SqsAccess:
        if not flynotes_up[0]:
            raise ConnectionError("Flynotes unreachable")
        creds = AwsCredentials("AK", "SK", "T", clock.now + timedelta(hours=36))
        return SqsAccess("http://q", "eu-west-2", creds)

    loop = CommandLoop(
        lambda c: None, access, reporter=Reporter(), clock=clock, client_factory=lambda a, e: Idle()
    )
    loop.poll_once()
    flynotes_up[0] = False
    clock.now += timedelta(hours=35, minutes=30)
    assert loop.poll_once() == 0  # refresh failed, old credentials still good for 30 min
    assert len(reports) == 1 and isinstance(reports[0], ConnectionError)
    clock.now += timedelta(seconds=30)
    loop.poll_once()  # no new attempt within min_refresh_interval
    assert len(reports) == 1
    clock.now += timedelta(hours=1)
    with pytest.raises(ConnectionError):  # expired: nothing left to poll with
        loop.poll_once()


def test_bulk_upload_interrupted_by_stop_is_redelivered_not_reported(h, rollbar_recorder):
    h.stop.set()  # the handler sees a shutdown in progress before its first batch
    loop = h.loop()
    h.queues.send({"type": "bulk-upload-patients"})
    assert wait_until(lambda: loop.poll_once() > 0)
    assert h.flynotes.state.patients == {}
    assert rollbar_recorder.items == []
    assert h.queues.count(h.queues.url) == 1  # back for redelivery


def test_observers_hear_each_command_and_the_finished_bulk_upload(h):
    from r4 import observe

    handled: list[tuple[str, str]] = []
    uploads: list[int] = []
    observe.on_command_handled(lambda kind, outcome: handled.append((kind, outcome)))
    observe.on_bulk_uploaded(lambda _at, patients: uploads.append(patients))
    with h.running():
        h.queues.send({"type": "bulk-upload-patients"})
        h.queues.send({"type": "no-such-type"})
        assert wait_until(lambda: ("bulk-upload-patients", "done") in handled)
        assert wait_until(lambda: ("unknown", "refused") in handled)
    # "All patients", as the seed says: archived ones too (they may walk in again).
    assert uploads == [h.summary.patients - h.summary.without_id]
