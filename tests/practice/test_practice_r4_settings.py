"""`[r4]` settings: the mapping from TOML and the environment, older names still read."""

from __future__ import annotations

from urllib.parse import unquote_plus

import pytest
from pydantic import ValidationError

from gateway.core.settings import CONFIG_ENV, Settings


def _odbc(settings: Settings) -> str:
    url = settings.r4_url()
    assert url is not None
    return unquote_plus(url.split("odbc_connect=")[1])


def test_r4_table_in_toml_and_environment(tmp_path, monkeypatch):
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[r4]\nodbc_driver = "FreeTDS"\nserver = "R4SRV"\npreset = "NG_R4_Sys2000"\n'
        'chart_number = "Patient.ChartNumber"\nemail = ""\n'
    )
    monkeypatch.setenv(CONFIG_ENV, str(config))
    monkeypatch.setenv("PACS_GATEWAY_R4__FORENAME", "Person.GivenName")
    settings = Settings()
    mapping = settings.r4_mapping()
    assert mapping.preset == "NG_R4_Sys2000" and mapping.patients_table == "Patient"
    assert mapping.chart_number == "Patient.ChartNumber"
    assert mapping.forename == "Person.GivenName"  # the environment over the file
    assert mapping.email is None  # "" = not at this practice
    assert mapping.surname == "Person.LastName"  # the preset fills the rest
    # The preset names its database unless one is given.
    assert _odbc(settings) == (
        "DRIVER={FreeTDS};SERVER=R4SRV;DATABASE=NG_R4_Sys2000;Trusted_Connection=yes"
    )


def test_default_is_sys2000_and_older_names_keep_working():
    settings = Settings(r4_odbc_driver="SQL Server Native Client 11.0", r4_server="R4SRV")
    assert settings.r4_mapping().patient_id == "PatientCode"
    assert _odbc(settings) == (
        "DRIVER={SQL Server Native Client 11.0};SERVER=R4SRV;DATABASE=sys2000;"
        "Trusted_Connection=yes"
    )
    assert Settings(r4_database_url="sqlite:///old.db").r4_url() == "sqlite:///old.db"
    both = Settings(r4_database_url="sqlite:///old.db", r4={"database_url": "sqlite:///new.db"})
    assert both.r4_url() == "sqlite:///new.db"


def test_a_mapping_naming_an_unknown_table_is_refused_at_start():
    with pytest.raises(ValidationError, match="neither patients_table"):
        Settings(r4={"surname": "People.Surname"})
