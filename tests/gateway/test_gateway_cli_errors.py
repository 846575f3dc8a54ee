"""What the CLI says when something is wrong: one sentence on stderr, exit 1, no traceback
(unless --debug); configuration errors name the file, the key and the near miss; plus
--version and --json for scripts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from gateway_testkit import gateway_settings
from orthanc_server import free_port
from serve_process import write_config


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "120", "PATH": "/usr/bin:/bin", **(env or {})},
    )


def _one_sentence(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_mistyped_key_names_the_file_the_key_and_the_setting_meant(tmp_path):
    config = _config(tmp_path, 'dicom_prot = 11112\ndata_dir = "var"\n')
    said = _one_sentence(_cli("echo", "--config", str(config)))
    assert str(config) in said
    assert "dicom_prot" in said
    assert "did you mean dicom_port?" in said


def test_a_mistyped_key_of_a_pacs_entry_is_named_too(tmp_path):
    config = _config(
        tmp_path, '[[pacs]]\nname = "main"\nae_titel = "ORTHANC"\nhost = "127.0.0.1"\n'
    )
    said = _one_sentence(_cli("echo", "--config", str(config)))
    assert str(config) in said and "ae_titel" in said and "did you mean ae_title?" in said


def test_a_bad_value_from_the_environment_names_the_variable(tmp_path):
    config = _config(tmp_path, "")
    said = _one_sentence(
        _cli("echo", "--config", str(config), env={"PACS_GATEWAY_DICOM_PORT": "eleven"})
    )
    assert "PACS_GATEWAY_DICOM_PORT" in said and "dicom_port" in said


def test_a_toml_syntax_error_names_the_file_and_the_line(tmp_path):
    config = _config(tmp_path, 'ae_title = "GW"\ndicom_port = \n')
    said = _one_sentence(_cli("echo", "--config", str(config)))
    assert str(config) in said and "not valid TOML" in said and "line 2" in said


def test_every_command_words_an_unreadable_config_file_as_serve_does(tmp_path):
    # A folder named as the file, and a file that is not UTF-8: the sentences `serve` says.
    said = _one_sentence(_cli("echo", "--config", str(tmp_path)))
    assert str(tmp_path) in said and "is a folder; name the TOML file itself" in said
    config = tmp_path / "gateway.toml"
    config.write_bytes(b'data_dir = "\xff\xfe"\n')
    said = _one_sentence(_cli("keys", "list", "--config", str(config)))
    assert str(config) in said and "is not UTF-8 text" in said


def test_debug_shows_the_traceback(tmp_path):
    config = _config(tmp_path, "dicom_prot = 11112\n")
    result = _cli("--debug", "echo", "--config", str(config))
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_brackets_in_a_sentence_print_as_typed(tmp_path):
    config = _config(tmp_path, 'data_dir = "var"\n')
    said = _one_sentence(_cli("echo", "--config", str(config)))
    assert "add a [[pacs]] entry" in said


def test_unknown_pacs_gateway_variables_are_warned_about(tmp_path, orthanc_running):
    settings = gateway_settings(tmp_path / "data", free_port(), orthanc_running)
    config = write_config(tmp_path / "gateway.toml", settings)
    result = _cli("echo", "--config", str(config), env={"PACS_GATEWAY_WORKRES": "4"})
    assert result.returncode == 0, result.stderr
    assert "PACS_GATEWAY_WORKRES" in result.stderr
    assert "did you mean PACS_GATEWAY_WORKERS?" in result.stderr


def test_version_and_json_for_scripts(tmp_path, orthanc_running, demo_catalog):
    from importlib.metadata import version

    shown = _cli("--version")
    assert shown.returncode == 0 and version("pacs-gateway") in shown.stdout

    settings = gateway_settings(tmp_path / "data", free_port(), orthanc_running)
    config = write_config(tmp_path / "gateway.toml", settings)
    echo = _cli("echo", "--config", str(config), "--json")
    assert echo.returncode == 0, echo.stderr
    answer = json.loads(echo.stdout)
    assert answer["pacs"] == "test-orthanc" and answer["milliseconds"] >= 0

    patient = "R4-1001"
    found = _cli("find", "--config", str(config), "--patient-id", patient, "--json")
    assert found.returncode == 0, found.stderr
    studies = json.loads(found.stdout)
    expected = {s.study_uid for s in demo_catalog.studies_for(patient)}
    # Full UIDs, never cut to fit a terminal.
    assert {s["study_uid"] for s in studies} == expected
    table = _cli("find", "--config", str(config), "--patient-id", patient)
    assert table.returncode == 0, table.stderr
    for uid in expected:
        assert uid in table.stdout, table.stdout


def test_what_the_cli_fetched_is_indexed_and_never_also_waits_for_review(
    tmp_path, orthanc_running, gateway_scp_port, demo_catalog
):
    from gateway.service import Gateway

    patient = "R4-1001"
    settings = gateway_settings(tmp_path / "data", gateway_scp_port, orthanc_running)
    config = write_config(tmp_path / "gateway.toml", settings)
    fetched = _cli("fetch", "--config", str(config), "--patient-id", patient)
    assert fetched.returncode == 0, fetched.stderr
    expected = {s.study_uid for s in demo_catalog.studies_for(patient)}

    # The next `serve` start looks for received studies nobody matched: there must be none.
    gateway = Gateway(settings)
    gateway.start(workers=0)
    gateway.stop()
    indexed = {s.study_uid for s in gateway.index.patient_studies(patient)}
    waiting = {i.study_uid for i in gateway.review.list(limit=100)}
    assert indexed == expected
    assert not indexed & waiting, "a study is both indexed and waiting for review"


def test_fetch_while_serve_holds_the_dicom_port_is_refused_in_one_sentence(
    tmp_path, orthanc_running
):
    import socket

    port = free_port()
    settings = gateway_settings(tmp_path / "data", port, orthanc_running)
    config = write_config(tmp_path / "gateway.toml", settings)
    with socket.socket() as holder:  # what a running `serve` does to the port
        holder.bind(("127.0.0.1", port))
        holder.listen()
        said = _one_sentence(_cli("fetch", "--config", str(config), "--patient-id", "R4-1001"))
    assert f"DICOM port {port}" in said and "pacs-gateway serve" in said
