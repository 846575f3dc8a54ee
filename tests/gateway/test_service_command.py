"""`pacs-gateway service …` and the console: what the Windows service registers (plain data),
that the commands call the pywin32 layer only on Windows, and that a legacy code page console
never crashes the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import types

import pytest
from typer.testing import CliRunner

from gateway.cli.main import app
from gateway.cli.windows_service import WINDOWS_ONLY, build_spec
from winservice.spec import RESTART_EXIT_CODE


def test_the_service_runs_serve_with_this_python_as_the_sql_server_account(tmp_path):
    config = tmp_path / "gateway.toml"
    spec = build_spec(config, account="PRACTICE\\svc-r4", python="C:\\gw\\python.exe")
    assert spec.command == ("C:\\gw\\python.exe", "-m", "gateway", "serve", "--config", str(config))
    assert spec.account == "PRACTICE\\svc-r4"
    assert spec.name == "PacsGateway"
    assert spec.working_dir == tmp_path
    assert spec.log.path == tmp_path / "logs" / "pacsgateway.log"
    assert spec.log.max_bytes == 10 * 1024 * 1024 and spec.log.backup_count == 10
    assert spec.start_type == "delayed-auto"
    assert spec.restart.delay_after(RESTART_EXIT_CODE, 1) == 0
    assert spec.restart.delay_after(1, 1) > 0
    assert [a.delay_seconds for a in spec.failure_actions] == [10, 60, 300]
    assert spec.environment["PYTHONIOENCODING"] == "utf-8"


def test_on_linux_every_service_command_says_it_is_windows_only(tmp_path):
    config = tmp_path / "gateway.toml"
    config.write_text("")
    for args in (
        ["install", "--config", str(config)],
        ["remove"],
        ["start"],
        ["stop"],
        ["status"],
    ):
        result = CliRunner().invoke(app, ["service", *args])
        assert result.exit_code == 1, args
        assert " ".join(result.output.split()) == WINDOWS_ONLY


def test_dry_run_prints_the_registration_on_any_platform(tmp_path):
    result = CliRunner().invoke(
        app,
        ["service", "install", "--config", str(tmp_path / "g.toml"), "--dry-run"],
    )
    assert result.exit_code == 0, result.output
    assert "-m gateway serve --config" in result.output
    assert "LocalSystem" in result.output
    assert "exit 75: at once" in result.output


@pytest.fixture
def fake_windows(monkeypatch):
    """sys.platform "win32" and a recording stand-in for the pywin32 layer."""
    calls: list[tuple[str, object]] = []
    module = types.ModuleType("winservice.windows")
    module.install = lambda spec, password: calls.append(("install", (spec, password)))
    module.remove = lambda name: calls.append(("remove", name))
    module.start = lambda name: calls.append(("start", name))
    module.stop = lambda name: calls.append(("stop", name))
    module.status = lambda name: calls.append(("status", name)) or "running"
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setitem(sys.modules, "winservice.windows", module)
    import winservice

    monkeypatch.setattr(winservice, "windows", module, raising=False)
    return calls


def test_on_windows_install_registers_the_spec_with_the_accounts_password(fake_windows, tmp_path):
    config = tmp_path / "gateway.toml"
    config.write_text("")
    result = CliRunner().invoke(
        app,
        ["service", "install", "--config", str(config), "--account", "PRACTICE\\svc-r4"],
        input="s3cret\n",
    )
    assert result.exit_code == 0, result.output
    [(what, (spec, password))] = fake_windows
    assert what == "install" and password == "s3cret"
    assert spec == build_spec(config, account="PRACTICE\\svc-r4")
    assert "s3cret" not in result.output

    for command in ("start", "status", "stop", "remove"):
        assert CliRunner().invoke(app, ["service", command]).exit_code == 0
    assert [c[0] for c in fake_windows[1:]] == ["start", "status", "stop", "remove"]


def test_install_refuses_a_missing_config_before_touching_windows(fake_windows, tmp_path):
    result = CliRunner().invoke(app, ["service", "install", "--config", str(tmp_path / "no")])
    assert result.exit_code == 1 and "does not exist" in result.output
    assert fake_windows == []


def test_the_cli_prints_names_a_cp1252_console_cannot_show(tmp_path):
    # PYTHONIOENCODING=cp1252 gives stdout and stderr exactly a Windows cp1252 console's
    # encoding, with Python's default "strict" errors.
    env = {
        **os.environ,
        "PYTHONIOENCODING": "cp1252",
        "PACS_GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'gw.db'}",
        "COLUMNS": "200",
    }

    def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            timeout=120,
            check=False,
        )

    created = cli("keys", "create", "--name", "Łukasz Müller 山田", "--role", "staff")
    assert created.returncode == 0, created.stderr.decode("cp1252", "replace")
    assert "ukasz Müller" in created.stderr.decode("cp1252")  # stderr: backslashreplace
    listed = cli("keys", "list")
    assert listed.returncode == 0, listed.stderr.decode("cp1252", "replace")
    assert "?ukasz Müller ??" in listed.stdout.decode("cp1252")
