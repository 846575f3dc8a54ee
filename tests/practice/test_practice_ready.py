"""/ready reports R4 (and, with Flynotes, the licence and the SQS loop) next to the PACS."""

from __future__ import annotations

from demo_practice import write_demo_practice

from gateway.service import Gateway
from gateway.settings import Settings


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
