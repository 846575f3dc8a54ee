from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from r4_testkit import LICENCE

from r4.flynotes import (
    FlynotesClient,
    FlynotesRequestError,
    FlynotesServerError,
    basic_patient_json,
)
from r4.patients import get_patient, iter_patient_batches, iter_patient_records
from r4.sync import PatientNotFound, bulk_upload_patients, sync_patient
from testkit.fake_flynotes import FakeFlynotes


def test_initialise_returns_version_queue_and_expiring_credentials(fake_flynotes, flynotes_client):
    fake_flynotes.gateway_version = "1.2.3"
    fake_flynotes.queue_url = "https://sqs.eu-west-2.amazonaws.com/1/practice"
    before = datetime.now(UTC)
    info = flynotes_client.initialise("1.2.2")
    assert info.gateway_version == "1.2.3"
    assert info.sqs.queue_url == "https://sqs.eu-west-2.amazonaws.com/1/practice"
    assert info.sqs.region == "eu-west-2"
    creds = info.sqs.credentials
    assert creds.access_key_id and creds.secret_access_key and creds.session_token
    assert before + timedelta(hours=35) < creds.expires_at < before + timedelta(hours=37)
    assert creds.secret_access_key not in repr(creds)
    request = fake_flynotes.state.requests[-1]
    assert request.headers["authorization"] == f"Licence {LICENCE}"
    assert request.body["gateway_version"] == "1.2.2"


def test_batch_upload_is_idempotent_by_content(practice, fake_flynotes, flynotes_client):
    engine, _ = practice
    page = next(iter_patient_batches(engine, 20))
    first = flynotes_client.upload_patient_batch(page)
    again = flynotes_client.upload_patient_batch(page)
    assert first.batch_id == again.batch_id and first.batch_id.startswith("sha256:")
    assert (first.duplicate, again.duplicate) == (False, True)
    other = flynotes_client.upload_patient_batch(page[:-1])
    assert other.batch_id != first.batch_id
    sent = fake_flynotes.state.requests[0]
    assert sent.headers["idempotency-key"] == first.batch_id == sent.body["batch_id"]
    assert sent.body["patients"][0] == json.loads(json.dumps(basic_patient_json(page[0])))
    assert "medical_history" not in sent.body["patients"][0]


def test_bulk_upload_sends_every_patient_in_batches(practice, fake_flynotes, flynotes_client):
    engine, summary = practice
    result = bulk_upload_patients(engine, flynotes_client, batch_size=40)
    assert result.patients == summary.patients
    assert result.batches == -(-summary.patients // 40)
    stored = fake_flynotes.state.patients
    expected = {
        d.record.id: d for p in iter_patient_batches(engine, 1000, include_inactive=True) for d in p
    }
    # "All patients": archived ones too (the mapping names an active flag here).
    assert stored.keys() == expected.keys()
    active = {r.id for r in iter_patient_records(engine)}
    assert len(active) == summary.active_patients < len(stored)
    sample = next(d for d in expected.values() if d.address is None)
    assert stored[sample.record.id]["address"] is None
    assert stored[sample.record.id]["family_name"] == sample.record.family_name
    # An unchanged practice uploads the same batches: all recognised, nothing stored twice.
    again = bulk_upload_patients(engine, flynotes_client, batch_size=40)
    assert again.duplicate_batches == again.batches
    assert fake_flynotes.state.uploaded_patient_count == summary.patients


def test_outage_is_retried_and_no_patient_is_lost(practice, fake_flynotes, flynotes_client):
    engine, summary = practice
    fake_flynotes.fail_next(3, status=503)
    bulk_upload_patients(engine, flynotes_client, batch_size=100)
    assert len(fake_flynotes.state.patients) == summary.patients
    assert fake_flynotes.state.attempts == 3 + -(-summary.patients // 100)


def test_dropped_connections_are_retried(practice, fake_flynotes, flynotes_client):
    engine, _ = practice
    fake_flynotes.fail_next(2, status=0)
    flynotes_client.upload_patient_batch(next(iter_patient_batches(engine, 5)))
    assert fake_flynotes.state.attempts == 3


def test_gives_up_after_max_attempts(practice, fake_flynotes, flynotes_client):
    engine, _ = practice
    fake_flynotes.fail_next(50, status=502)
    with pytest.raises(FlynotesServerError) as info:
        flynotes_client.upload_patient_batch(next(iter_patient_batches(engine, 5)))
    assert info.value.status == 502
    assert fake_flynotes.state.attempts == 5


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_4xx_is_not_retried(practice, fake_flynotes, flynotes_client, status):
    engine, _ = practice
    fake_flynotes.fail_next(1, status=status)
    with pytest.raises(FlynotesRequestError):
        flynotes_client.upload_patient_batch(next(iter_patient_batches(engine, 5)))
    assert fake_flynotes.state.attempts == 1


def test_wrong_licence_is_refused_once(fake_flynotes):
    with (
        FlynotesClient(fake_flynotes.url, "not-ours", backoff_initial=0.01) as client,
        pytest.raises(FlynotesRequestError) as info,
    ):
        client.initialise("0.1.0")
    assert info.value.status == 401 and fake_flynotes.state.attempts == 1


def test_unreachable_flynotes_raises_transport_error():
    with (
        FlynotesClient("http://127.0.0.1:9", "k", max_attempts=2, backoff_initial=0.01) as c,
        pytest.raises(httpx.TransportError),
    ):
        c.initialise("0.1.0")


def test_full_sync_sends_record_and_history(practice, fake_flynotes, flynotes_client):
    engine, _ = practice
    patient_id = next(
        d.record.id
        for p in iter_patient_batches(engine, 1000)
        for d in p
        if get_patient(engine, d.record.id).medical_history
    )
    sync_patient(engine, flynotes_client, patient_id)
    body = fake_flynotes.state.synced[patient_id]
    details = get_patient(engine, patient_id)
    assert body["id"] == patient_id
    assert body["given_name"] == details.record.given_name
    assert [h["question"] for h in body["medical_history"]] == [
        h.question for h in details.medical_history
    ]
    with pytest.raises(PatientNotFound):
        sync_patient(engine, flynotes_client, 10**9)


def test_errors_never_quote_bodies():
    with FakeFlynotes(LICENCE) as fake, FlynotesClient(fake.url, LICENCE, max_attempts=1) as c:
        fake.fail_next(1, 500)
        with pytest.raises(FlynotesServerError) as info:
            c.initialise("0.1.0")
    assert str(info.value) == "Flynotes POST /licence/initialise answered 500"
