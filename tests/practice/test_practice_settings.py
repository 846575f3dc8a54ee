"""The id rule's PACS id for a chart number and the settings that turn the practice side on
(in-process, no PACS)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from orthanc_server import free_port
from pydantic import ValidationError

from gateway.core.settings import Settings
from gateway.matching import IdRule
from gateway.service import Gateway


def test_the_chart_number_becomes_the_pacs_id_the_rule_matches():
    rule = IdRule(prefix="R4-", suffix="/A", pad_width=6)
    assert rule.pacs_id("42") == "R4-000042/A"
    # The matcher's reading of that PACS id leads back to the same chart number.
    assert rule.pacs_key("R4-000042/A") == rule.r4_key("42")
    assert IdRule().pacs_id(" C0001 ") == "C0001"


def test_practice_settings_are_off_by_default_and_build_the_sql_server_url():
    assert Settings().r4_url() is None
    assert not Settings().practice_configured
    settings = Settings(
        r4_odbc_driver="ODBC Driver 17 for SQL Server",
        r4_server="R4SRV",
        flynotes_url="https://api.example",
        flynotes_licence_key="licence-123",
    )
    assert settings.practice_configured
    url = sa.engine.make_url(settings.r4_url())
    assert url.drivername == "mssql+pyodbc"
    assert url.query["odbc_connect"] == (
        "DRIVER={ODBC Driver 17 for SQL Server};SERVER=R4SRV;DATABASE=sys2000;"
        "Trusted_Connection=yes"
    )
    assert "licence-123" not in repr(settings)


def test_flynotes_url_without_a_licence_key_is_refused():
    with pytest.raises(ValidationError, match="set both or neither"):
        Settings(flynotes_url="https://api.example")


def test_drain_stops_the_workers_and_resume_starts_them_again(tmp_path):
    gateway = Gateway(Settings(data_dir=tmp_path, dicom_port=free_port(), dicom_bind="127.0.0.1"))
    assert gateway.fetch_job.matching is None  # no R4: fetches by R4 id stay refused
    gateway.start(workers=1)
    try:
        assert gateway.pool is not None
        gateway.drain(timeout=5)
        assert gateway.pool is None
        gateway.resume()
        assert gateway.pool is not None
    finally:
        gateway.stop(timeout=5)
    assert gateway.pool is None
