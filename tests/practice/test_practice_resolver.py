"""ChartNumberResolver and the settings that turn the practice side on (in-process, no PACS)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from orthanc_server import free_port
from pydantic import ValidationError

import jobs
from gateway.matching import IdRule
from gateway.practice import ChartNumberResolver, pacs_id_for_chart
from gateway.service import Gateway
from gateway.settings import Settings
from r4.database import create_r4_engine
from r4.mapping import R4Mapping
from r4.sample_data import generate_practice, update_patient


@pytest.fixture
def r4_engine(tmp_path):
    # The id rule's chart number remapped to a column of its own (default: PatientCode).
    mapping = R4Mapping(chart_number="ChartNo")
    engine = create_r4_engine(f"sqlite:///{tmp_path / 'sys2000.db'}", mapping)
    generate_practice(engine, 5, seed=1, first_id=100)
    update_patient(engine, 100, chart_number="42")
    update_patient(engine, 101, chart_number=" ")
    yield engine
    engine.dispose()


def test_the_chart_number_becomes_the_pacs_id_the_rule_matches(r4_engine):
    rule = IdRule(prefix="R4-", suffix="/A", pad_width=6)
    resolver = ChartNumberResolver(r4_engine, rule)
    assert resolver.pacs_patient_ids("100", "main") == ["R4-000042/A"]
    # The matcher's reading of that PACS id leads back to the same chart number.
    assert rule.pacs_key("R4-000042/A") == rule.r4_key("42")
    assert pacs_id_for_chart(IdRule(), " C0001 ") == "C0001"


@pytest.mark.parametrize(
    ("r4_id", "sentence"),
    [
        ("999", "R4 has no patient with this id."),
        ("101", "The R4 patient has no chart number, so their PACS id cannot be derived."),
        ("abc", "The R4 patient id is not a number."),
    ],
)
def test_unresolvable_patients_fail_the_job_with_a_sentence(r4_engine, r4_id, sentence):
    with pytest.raises(jobs.PermanentError) as failure:
        ChartNumberResolver(r4_engine, IdRule()).pacs_patient_ids(r4_id, "main")
    assert str(failure.value) == sentence


def test_an_unreadable_r4_is_retried(tmp_path):
    engine = create_r4_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no R4 tables
    with pytest.raises(jobs.TransientError, match=r"R4 database could not be read"):
        ChartNumberResolver(engine, IdRule()).pacs_patient_ids("1", "main")
    engine.dispose()


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
    assert gateway.fetch_job.resolver is None  # no R4: fetches by R4 id stay refused
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
