"""GET /metrics: Prometheus text read from the database at scrape time, and PACS figures."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from orthanc_server import free_port
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import create_app
from gateway.core.settings import PacsSettings, Settings
from gateway.fetch.job import FETCH_KIND
from gateway.service import Gateway


@pytest.fixture
def gateway(tmp_path, orthanc_running) -> Gateway:
    pacs = [
        PacsSettings(
            name="test-orthanc",
            ae_title=orthanc_running.ae_title,
            host="127.0.0.1",
            port=orthanc_running.dicom_port,
        ),
        PacsSettings(name="closed-pacs", ae_title="NOBODY", host="127.0.0.1", port=free_port()),
    ]
    settings = Settings(
        data_dir=tmp_path / "var",
        dicom_port=free_port(),
        dicom_bind="127.0.0.1",
        workers=0,
        pacs=pacs,
    )
    return Gateway(settings)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def finish_fetch(gateway: Gateway, received_bytes: int, *, fail: bool = False) -> None:
    job, _ = gateway.jobs.submit(FETCH_KIND, {"pacs_patient_id": "X"})
    claimed = gateway.jobs.claim("metrics-test", [FETCH_KIND], 30)
    assert claimed is not None and claimed.id == job.id
    gateway.jobs.report(job.id, "metrics-test", progress={"bytes": received_bytes})
    if fail:
        gateway.jobs.fail(job.id, "metrics-test", "The PACS refused.", error="refused")
    else:
        gateway.jobs.succeed(job.id, "metrics-test")


def test_metrics_need_a_key_and_read_the_database_when_scraped(gateway):
    with TestClient(create_app(gateway), raise_server_exceptions=False) as client:
        assert client.get("/metrics").status_code == 401
        _, key = client.app.state.keys.create("prometheus", "service")
        headers = {"Authorization": f"Bearer {key}"}
        before = samples(client.get("/metrics", headers=headers).text)
        assert before[("pacs_gateway_jobs", (("state", "succeeded"),))] == 0
        assert before[("pacs_gateway_review_queue_open", ())] == 0

        finish_fetch(gateway, 5 * 1024 * 1024)
        finish_fetch(gateway, 200 * 1024 * 1024)
        finish_fetch(gateway, 0, fail=True)
        gateway.jobs.submit(FETCH_KIND, {"pacs_patient_id": "Y"})
        answer = client.get("/metrics", headers=headers)
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    after = samples(answer.text)
    assert after[("pacs_gateway_jobs", (("state", "succeeded"),))] == 2
    assert after[("pacs_gateway_jobs", (("state", "failed"),))] == 1
    assert after[("pacs_gateway_jobs", (("state", "queued"),))] == 1
    ok = (("state", "succeeded"),)
    assert after[("pacs_gateway_fetch_duration_seconds_count", ok)] == 2
    assert after[("pacs_gateway_fetch_bytes_sum", ok)] == 205 * 1024 * 1024
    ten_mb = (("le", str(float(10 * 1024 * 1024))), ("state", "succeeded"))
    assert after[("pacs_gateway_fetch_bytes_bucket", ten_mb)] == 1
    assert after[("pacs_gateway_instances_stored", ())] == 0


def test_echo_latency_and_association_failures_by_pacs(gateway):
    with TestClient(create_app(gateway), raise_server_exceptions=False) as client:
        _, key = client.app.state.keys.create("prometheus", "service")
        headers = {"Authorization": f"Bearer {key}"}
        before = samples(client.get("/metrics", headers=headers).text)
        # /ready echoes every PACS: one answers, one is closed.
        assert client.get("/ready", headers=headers).json()["status"] == "degraded"
        after = samples(client.get("/metrics", headers=headers).text)

    def delta(name: str, pacs: str) -> float:
        key = (name, (("pacs", pacs),))
        return after.get(key, 0) - before.get(key, 0)

    assert delta("pacs_gateway_echo_seconds_count", "test-orthanc") == 1
    assert delta("pacs_gateway_echo_seconds_count", "closed-pacs") == 0
    assert delta("pacs_gateway_association_failures_total", "closed-pacs") == 1
    assert delta("pacs_gateway_association_failures_total", "test-orthanc") == 0


def test_sqs_messages_and_last_bulk_upload_come_from_the_practice_side(gateway):
    from r4 import observe

    with TestClient(create_app(gateway), raise_server_exceptions=False) as client:
        _, key = client.app.state.keys.create("prometheus", "service")
        headers = {"Authorization": f"Bearer {key}"}
        before = samples(client.get("/metrics", headers=headers).text)
        observe.command_handled("fetch-studies", "done")
        observe.command_handled("fetch-studies", "done")
        observe.command_handled("unknown", "refused")
        observe.bulk_uploaded(1_700_000_000.0, 120)
        after = samples(client.get("/metrics", headers=headers).text)

    def delta(labels: tuple[tuple[str, str], ...]) -> float:
        key = ("pacs_gateway_sqs_messages_total", labels)
        return after.get(key, 0) - before.get(key, 0)

    assert delta((("outcome", "done"), ("type", "fetch-studies"))) == 2
    assert delta((("outcome", "refused"), ("type", "unknown"))) == 1
    assert after[("pacs_gateway_last_bulk_upload_timestamp_seconds", ())] == 1_700_000_000.0
