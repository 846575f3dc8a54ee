"""/ready reports R4 (and, with Flynotes, the licence and the SQS loop) next to the PACS."""

from __future__ import annotations

from demo_practice import write_demo_practice
from orthanc_server import free_port
from r4_testkit import LICENCE, Queues, wait_until

from gateway.core.settings import Settings
from gateway.service import Gateway
from r4.selfupdate import installed_version
from testkit.fake_flynotes import FakeFlynotes


def test_ready_reports_r4_reachable_then_unreachable(tmp_path):
    r4_db = tmp_path / "sys2000.db"
    url = write_demo_practice(r4_db, generated=5)
    gateway = Gateway(Settings(data_dir=tmp_path / "gw", r4={"database_url": url}))
    try:
        checks = gateway.readiness().checks
        assert checks["r4"].ok and checks["r4"].detail == "reachable"
        assert "flynotes" not in checks and "sqs" not in checks  # Flynotes not configured

        gateway.practice.engine.dispose()
        r4_db.rename(tmp_path / "moved.db")
        r4_db.mkdir()  # a directory where the database file was: SQLite cannot open it
        checks = gateway.readiness().checks
        assert not checks["r4"].ok and not gateway.readiness().ok
        assert checks["r4"].detail.startswith("Could not connect to the R4 SQLite file")
    finally:
        gateway.engine.dispose()


def test_ready_reports_the_licence_and_the_sqs_loop(tmp_path, practice_moto_endpoint):
    queues = Queues(practice_moto_endpoint)
    url = write_demo_practice(tmp_path / "sys2000.db", generated=5)
    with FakeFlynotes(
        LICENCE, gateway_version=installed_version() or "0", queue_url=queues.url
    ) as fl:
        settings = Settings(
            data_dir=tmp_path / "gw",
            dicom_port=free_port(),
            dicom_bind="127.0.0.1",
            r4={"database_url": url},
            flynotes_url=fl.url,
            flynotes_licence_key=LICENCE,
            sqs_endpoint_url=practice_moto_endpoint,
            sqs_wait_seconds=1,
        )
        gateway = Gateway(settings)
        gateway.start(workers=0)
        try:
            assert gateway.practice.exit_code is None
            assert wait_until(lambda: gateway.readiness().ok, 10), gateway.readiness().checks
            checks = gateway.readiness().checks
            assert checks["flynotes"].detail == "licence accepted"
            assert checks["sqs"].detail == "polling for commands"
            assert checks["r4"].ok
        finally:
            gateway.stop(timeout=5)
        stopped = gateway.readiness().checks
        assert not stopped["sqs"].ok and "not running" in stopped["sqs"].detail
