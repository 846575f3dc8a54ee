"""The operator's CLI against the real Orthanc: echo, find, fetch, and a PACS that is down."""

from __future__ import annotations

import subprocess
import sys

import demo_studies
from gateway_testkit import gateway_settings
from orthanc_server import free_port
from serve_process import write_config


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def test_echo_find_and_fetch(tmp_path, orthanc_running, gateway_scp_port, demo_catalog):
    config = write_config(
        tmp_path / "gateway.toml",
        gateway_settings(tmp_path / "data", gateway_scp_port, orthanc_running),
    )
    patient = demo_studies.LATIN1_PATIENT_ID

    echo = _cli("echo", "--config", str(config))
    found = _cli("find", "--config", str(config), "--patient-id", patient)
    fetched = _cli("fetch", "--config", str(config), "--patient-id", patient)

    assert echo.returncode == 0, echo.stderr
    assert "answered C-ECHO" in echo.stdout
    assert found.returncode == 0, found.stderr
    for study in demo_catalog.studies_for(patient):
        assert study.study_uid in found.stdout
    assert fetched.returncode == 0, fetched.stderr
    images = sum(s.instance_count for s in demo_catalog.studies_for(patient))
    assert f"2 studies, {images} images" in fetched.stdout
    assert "Fetching study 2 of 2" in fetched.stdout
    stored = [p for p in (tmp_path / "data" / "studies").rglob("*.dcm")]
    assert len(stored) == images


def test_a_pacs_that_is_down_gets_one_clear_sentence(tmp_path, orthanc_running):
    settings = gateway_settings(tmp_path / "data", free_port(), orthanc_running)
    settings.pacs[0].port = free_port()
    config = write_config(tmp_path / "gateway.toml", settings)

    result = _cli("echo", "--config", str(config))

    assert result.returncode == 1
    assert "The PACS test-orthanc could not be reached: nothing is listening on" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_bad_dates_are_explained(tmp_path, orthanc_running):
    config = write_config(
        tmp_path / "gateway.toml",
        gateway_settings(tmp_path / "data", free_port(), orthanc_running),
    )

    result = _cli("find", "--config", str(config), "--patient-id", "X", "--from", "31/12/2020")

    assert result.returncode == 1
    assert "--from takes a date as YYYY-MM-DD" in result.stderr


def test_a_wildcard_on_the_command_line_is_refused_in_one_line(tmp_path, orthanc_running):
    config = write_config(
        tmp_path / "gateway.toml",
        gateway_settings(tmp_path / "data", free_port(), orthanc_running),
    )
    for command, option, value in [
        ("find", "--patient-id", "R4-100*"),
        ("fetch", "--patient-id", "*"),
        ("fetch", "--patient-id", "R4-100?"),
        ("find", "--name", "Dubois*"),
    ]:
        result = _cli(command, "--config", str(config), option, value, "--birth-date", "1975-11-05")

        assert result.returncode == 1, (command, value)
        assert result.stderr.strip().splitlines() == [
            f"{option} must not contain the DICOM matching characters * ? or \\"
        ]
    assert not (tmp_path / "data" / "studies").exists() or not any(
        (tmp_path / "data" / "studies").rglob("*.dcm")
    )
