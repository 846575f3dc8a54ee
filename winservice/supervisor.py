"""Run the service's command until told to stop: restart it whenever it exits, keep its output
in a rotating log file.

Invariants:
- At most one child runs at a time; `run` returns only after `stop` is set and the child has
  ended (asked to stop, then killed after `stop_timeout_seconds`).
- Every line the child writes (stdout and stderr) lands in the log with a timestamp; the log
  never grows past (backup_count + 1) × max_bytes.
- Exit code 75 restarts at once; any other exit the service did not ask for restarts after the
  policy's delay (a stop request during the delay ends `run`).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import IO

from winservice.spec import RESTART_EXIT_CODE, ServiceSpec

_POLL_SECONDS = 0.5


def ask_to_stop(process: subprocess.Popen[str]) -> None:
    """The polite stop: Ctrl+Break to the child's process group on Windows (uvicorn handles
    SIGBREAK like SIGTERM), SIGTERM elsewhere. Windows has no SIGTERM delivery to another
    process: Popen.terminate() there is TerminateProcess, an immediate kill."""
    if sys.platform == "win32":
        process.send_signal(getattr(signal, "CTRL_BREAK_EVENT"))  # noqa: B009 (Windows only)
    else:
        process.terminate()


def child_options() -> dict[str, object]:
    if sys.platform == "win32":
        # Its own process group, so Ctrl+Break reaches the child and not the service host.
        return {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP")}  # noqa: B009
    return {}


def open_log(spec: ServiceSpec) -> logging.Logger:
    spec.log.path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        spec.log.path,
        maxBytes=spec.log.max_bytes,
        backupCount=spec.log.backup_count,
        encoding="utf-8",
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    # A logger of its own, outside logging's registry: the service host's own logging (and
    # pywin32's) stays separate.
    logger = logging.Logger(f"winservice.{spec.name}")
    logger.addHandler(handler)
    return logger


class Supervisor:
    def __init__(
        self,
        spec: ServiceSpec,
        *,
        stop_child: Callable[[subprocess.Popen[str]], None] = ask_to_stop,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self._stop_child = stop_child
        self._clock = clock
        self.exit_codes: list[int] = []  # of every run, for status and tests

    def run(self, stop: threading.Event) -> None:
        log = open_log(self.spec)
        crashes = 0
        try:
            while not stop.is_set():
                started = self._clock()
                code = self._run_once(log, stop)
                self.exit_codes.append(code)
                if stop.is_set():
                    log.info("[service] stopped (exit code %d)", code)
                    return
                if code == RESTART_EXIT_CODE:
                    crashes = 0
                    log.info("[service] exit code %d: restart requested, starting again", code)
                    continue
                if self._clock() - started >= self.spec.restart.stable_after:
                    crashes = 0
                crashes += 1
                delay = self.spec.restart.delay_after(code, crashes)
                log.info("[service] exited with code %d; starting again in %g s", code, delay)
                if stop.wait(delay):
                    return
        finally:
            for handler in log.handlers:
                handler.close()

    def _run_once(self, log: logging.Logger, stop: threading.Event) -> int:
        log.info("[service] starting: %s", self.spec.command_line())
        process = subprocess.Popen(
            list(self.spec.command),
            cwd=self.spec.working_dir,
            env={**os.environ, **self.spec.environment},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            **child_options(),  # type: ignore[arg-type]
        )
        assert process.stdout is not None
        pump = threading.Thread(target=_copy_lines, args=(process.stdout, log), daemon=True)
        pump.start()
        while True:
            try:
                process.wait(_POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                if stop.is_set():
                    self._end(process, log)
                    break
        pump.join(5.0)
        return process.returncode

    def _end(self, process: subprocess.Popen[str], log: logging.Logger) -> None:
        log.info("[service] stop requested: asking the program to stop")
        try:
            self._stop_child(process)
            process.wait(self.spec.stop_timeout_seconds)
        except (subprocess.TimeoutExpired, OSError):
            log.info(
                "[service] still running after %g s: terminating", self.spec.stop_timeout_seconds
            )
            process.kill()
            process.wait()


def _copy_lines(stream: IO[str], log: logging.Logger) -> None:
    for line in stream:
        log.info("%s", line.rstrip("\r\n"))
