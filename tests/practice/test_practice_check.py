"""`pacs-gateway check`: one line per check against R4 shaped like each preset, like a wrong
guess, the real test Orthanc and the fake Flynotes; exit 1 on any failure; `--json`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gateway_testkit import gateway_settings
from r4_testkit import LICENCE
from serve_process import write_config
from typer.testing import CliRunner

from gateway.cli.main import app
from gateway.core.settings import CONFIG_ENV
from r4.database import create_r4_engine
from r4.mapping import R4Mapping
from testkit.fake_flynotes import FakeFlynotes
from testkit.sample_data import generate_practice

NG = R4Mapping(preset="NG_R4_Sys2000")
# What this project used to guess: FirstName/LastName/BirthDate keyed by PatientID.
WRONG_GUESS = R4Mapping(
    patient_id="PatientID",
    chart_number="ChartNumber",
    forename="FirstName",
    surname="LastName",
    birth_date="BirthDate",
    mobile_phone="MobilePhone",
)


@pytest.fixture(autouse=True)
def _no_config_left_behind(monkeypatch):
    # `check --config` sets PACS_GATEWAY_CONFIG in this process; the next test's Settings
    # would read that file too. setenv first, so teardown restores the variable's absence.
    monkeypatch.setenv(CONFIG_ENV, "")
    monkeypatch.delenv(CONFIG_ENV)


def _practice(path: Path, mapping: R4Mapping, count: int = 120) -> str:
    url = f"sqlite:///{path}"
    engine = create_r4_engine(url, mapping)
    generate_practice(engine, count, seed=9)
    engine.dispose()
    return url


def _run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["check", "--config", str(config), *args])
    return result.exit_code, result.output


def _config(tmp_path: Path, settings) -> Path:
    return write_config(tmp_path / "check.toml", settings)


def _r4_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if " r4 " in f" {line.split(None, 1)[-1]}"]


@pytest.mark.parametrize(("label", "mapping"), [("sys2000", R4Mapping()), ("NG", NG)])
def test_each_preset_against_its_own_shape_passes(
    tmp_path, label, mapping, orthanc_running, gateway_scp_port
):
    url = _practice(tmp_path / f"{label}.db", mapping)
    r4 = {"database_url": url, "preset": mapping.preset}
    settings = gateway_settings(tmp_path / "gw", gateway_scp_port, orthanc_running, r4=r4)
    code, output = _run(_config(tmp_path, settings))
    print(output)
    assert code == 0, output
    lines = output.splitlines()
    assert all(line.startswith("ok") for line in lines[:-1]), output
    for field in ("patient_id", "forename", "surname", "birth_date", "sex"):
        assert any(f"r4 column {field}:" in line for line in lines), field
    assert any(line.startswith("ok    r4 patients: 120 rows") for line in lines)
    for read in ("bulk upload", "matcher index", "patient by id", "staff search"):
        assert f"ok    r4 read {read}: ran (1 row)" in lines
    assert any(line.startswith("ok    pacs test-orthanc C-ECHO: answered in") for line in lines)
    assert any(line.startswith("ok    pacs test-orthanc C-FIND: answered") for line in lines)
    if mapping.patient_id_is_text:
        assert any("with an R4 patient id (digits in Person.PMSRecordID)" in x for x in lines)


def test_a_wrong_guess_fails_and_suggests_the_real_columns(
    tmp_path, orthanc_running, gateway_scp_port
):
    url = _practice(tmp_path / "sys2000.db", R4Mapping())
    r4 = {"database_url": url, **WRONG_GUESS.model_dump(include=set(R4Mapping.model_fields))}
    settings = gateway_settings(tmp_path / "gw", gateway_scp_port, orthanc_running, r4=r4)
    code, output = _run(_config(tmp_path, settings))
    print(output)
    assert code == 1
    lines = output.splitlines()
    forename = next(x for x in lines if "r4 column forename:" in x)
    assert forename.startswith("FAIL") and "Patients.FirstName is missing" in forename
    assert "Columns like it: Forename" in forename
    surname = next(x for x in lines if "r4 column surname:" in x)
    assert "Columns like it: Surname" in surname
    birth = next(x for x in lines if "r4 column birth_date:" in x)
    assert "DOB" in birth
    assert next(x for x in lines if "r4 column patient_id:" in x).count("PatientCode") == 1
    assert "ok    r4 column sex: Patients.Sex" in lines  # what the guess got right
    assert any(x.startswith("FAIL  r4 reads: not run") for x in lines)
    assert lines[-1].endswith("failed")
    # No patient data: generated surnames never appear in the output.
    assert "Müller" not in output and "O'Brien" not in output

    code, text = _run(_config(tmp_path, settings), "--json")
    report = json.loads(text)
    assert code == 1 and report["ok"] is False
    assert {"name": "r4 column sex", "ok": True, "detail": "Patients.Sex"} in report["checks"]


def test_a_missing_table_and_an_unreachable_pacs(tmp_path, gateway_scp_port, orthanc_running):
    url = _practice(tmp_path / "ng.db", NG)  # the newer layout, checked as the classic one
    settings = gateway_settings(
        tmp_path / "gw", gateway_scp_port, orthanc_running, r4={"database_url": url}
    )
    dead = settings.pacs[0].model_copy(update={"name": "gone", "port": 1})
    settings = settings.model_copy(update={"pacs": [*settings.pacs, dead]})
    code, output = _run(_config(tmp_path, settings))
    print(output)
    assert code == 1
    table = next(x for x in output.splitlines() if "r4 table Patients" in x)
    assert table.startswith("FAIL") and "tables like it: Patient" in table
    gone = next(x for x in output.splitlines() if "pacs gone C-ECHO" in x)
    assert gone.startswith("FAIL") and "\n" not in gone


def test_the_move_and_the_licence(
    tmp_path, gateway_scp_port, orthanc_running, demo_catalog, monkeypatch
):
    small = min(demo_catalog.studies, key=lambda s: s.instance_count)
    # Secrets travel in the environment (a TOML dump would mask them).
    monkeypatch.setenv("PACS_GATEWAY_FLYNOTES_LICENCE_KEY", LICENCE)
    with FakeFlynotes(LICENCE) as flynotes:
        settings = gateway_settings(
            tmp_path / "gw",
            gateway_scp_port,
            orthanc_running,
            flynotes_url=flynotes.url,
            flynotes_licence_key=LICENCE,
        )
        code, output = _run(_config(tmp_path, settings), "--move-study", small.study_uid)
        print(output)
        assert code == 0, output
        assert "ok    r4: not configured: skipped (set [r4] to check it)." in output
        assert f"ok    pacs test-orthanc C-MOVE: {small.instance_count} images arrived at" in output
        assert "ok    flynotes licence: accepted" in output

        monkeypatch.setenv("PACS_GATEWAY_FLYNOTES_LICENCE_KEY", "not-the-licence")
        code, output = _run(_config(tmp_path, settings))
        assert code == 1
        assert (
            "FAIL  flynotes licence: Flynotes does not recognise the licence key; check "
            "flynotes_licence_key." in output
        )
