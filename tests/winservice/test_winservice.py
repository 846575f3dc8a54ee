"""The Windows service's platform-independent part: what it registers, and the supervisor
that restarts the program, run here with real child processes."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from orthanc_server import wait_until

from winservice.spec import (
    RESTART_EXIT_CODE,
    LogRotation,
    RestartPolicy,
    ServiceSpec,
)
from winservice.supervisor import Supervisor

# Exits 75 on its first run and 3 on its second; the third runs until SIGTERM, then exits 0
# after saying so. Each run prints a name outside cp1252 (the log is UTF-8).
CHILD = r"""
import pathlib, signal, sys, threading
runs = pathlib.Path(sys.argv[1])
n = len(runs.read_text()) if runs.exists() else 0
runs.write_text("x" * (n + 1))
print(f"run {n + 1}: Łukasz Müller", flush=True)
if n == 0:
    sys.exit(75)
if n == 1:
    print("crashing", file=sys.stderr, flush=True)
    sys.exit(3)
signal.signal(signal.SIGTERM, lambda *a: (print("graceful stop", flush=True), sys.exit(0)))
print("serving", flush=True)
threading.Event().wait()  # serves until the signal handler exits
"""


def _read(path: Path) -> str:
    return path.read_text("utf-8") if path.exists() else ""


def _spec(tmp_path: Path, command: tuple[str, ...], **kw) -> ServiceSpec:
    return ServiceSpec(
        name="GatewayTest",
        display_name="Gateway test",
        description="",
        command=command,
        working_dir=tmp_path,
        log=LogRotation(tmp_path / "logs" / "service.log", max_bytes=4096, backup_count=2),
        **kw,
    )


def test_restart_policy_75_at_once_crashes_backing_off_to_a_cap():
    policy = RestartPolicy(first_crash_delay=5, max_crash_delay=60)
    assert policy.delay_after(RESTART_EXIT_CODE, 1) == 0
    assert [policy.delay_after(1, n) for n in (1, 2, 3, 4, 5)] == [5, 10, 20, 40, 60]
    assert policy.delay_after(0, 9) == 60  # an unasked-for clean exit also restarts


def test_the_command_line_round_trips_through_windows_quoting(tmp_path):
    spec = _spec(
        tmp_path,
        (
            r"C:\Program Files\PACS Gateway\python.exe",
            "-m",
            "gateway",
            "serve",
            "--config",
            r"C:\ProgramData\PACS Gateway\gateway.toml",
        ),
    )
    assert spec.command_line() == (
        r'"C:\Program Files\PACS Gateway\python.exe" -m gateway serve --config '
        r'"C:\ProgramData\PACS Gateway\gateway.toml"'
    )
    restored = ServiceSpec.from_options(spec.name, spec.display_name, spec.to_options())
    assert restored.command == spec.command
    assert restored.log == spec.log
    assert restored.working_dir == spec.working_dir


def test_supervisor_restarts_on_75_and_on_crash_logs_everything_and_stops_gracefully(tmp_path):
    runs = tmp_path / "runs"
    child = tmp_path / "child.py"  # a file: its source must not show in the logged command line
    child.write_text(CHILD, encoding="utf-8")
    spec = _spec(
        tmp_path,
        (sys.executable, str(child), str(runs)),
        restart=RestartPolicy(first_crash_delay=0.2),
        stop_timeout_seconds=10,
    )
    supervisor = Supervisor(spec)
    stop = threading.Event()
    thread = threading.Thread(target=supervisor.run, args=(stop,), daemon=True)
    thread.start()
    log = spec.log.path
    try:
        assert wait_until(lambda: "serving" in _read(log), 30)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert supervisor.exit_codes == [75, 3, 0]
    text = log.read_text("utf-8")
    for expected in (
        "run 1: Łukasz Müller",
        "exit code 75: restart requested",
        "run 2: Łukasz Müller",
        "crashing",
        "exited with code 3; starting again in 0.2 s",
        "run 3: Łukasz Müller",
        "graceful stop",
        "stopped (exit code 0)",
    ):
        assert expected in text, expected


def test_a_child_that_ignores_the_stop_is_killed_after_the_timeout(tmp_path):
    child = tmp_path / "child.py"
    child.write_text(
        "import signal, threading\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('up', flush=True)\nthreading.Event().wait()\n"
    )
    spec = _spec(tmp_path, (sys.executable, str(child)), stop_timeout_seconds=0.5)
    asked: list[int] = []

    def stop_child(process: subprocess.Popen[str]) -> None:
        asked.append(process.pid)
        process.terminate()

    supervisor = Supervisor(spec, stop_child=stop_child)
    stop = threading.Event()
    thread = threading.Thread(target=supervisor.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: " up\n" in _read(spec.log.path), 30)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert len(asked) == 1
    assert supervisor.exit_codes and supervisor.exit_codes[0] < 0  # killed
    assert "terminating" in spec.log.path.read_text("utf-8")


def test_the_log_rotates_and_stays_bounded(tmp_path):
    chatty = "for i in range(2000): print('line', i, 'x' * 40)\nraise SystemExit(75)\n"
    spec = _spec(tmp_path, (sys.executable, "-c", chatty))
    stop = threading.Event()
    supervisor = Supervisor(spec)
    # Stop after the first run: the 75 would otherwise restart it forever.
    original = supervisor._run_once

    def once(log, stop_event):
        code = original(log, stop_event)
        stop.set()
        return code

    supervisor._run_once = once  # type: ignore[method-assign]
    supervisor.run(stop)
    files = sorted(spec.log.path.parent.iterdir())
    assert [f.name for f in files] == ["service.log", "service.log.1", "service.log.2"]
    assert all(f.stat().st_size <= 4096 + 200 for f in files)
