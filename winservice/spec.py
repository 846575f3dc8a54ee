"""What the Windows service registers, as plain data.

Invariants:
- The command line is the exact argv the supervisor starts; `command_line()` quotes it the way
  Windows' CreateProcess parses it back.
- The restart policy restarts on every exit the service did not ask for: immediately after
  RESTART_EXIT_CODE (75), after a delay growing up to `max_crash_delay` otherwise; a run that
  lasted `stable_after` seconds resets the delay.
- The failure actions (Service Control Manager) restart the service itself if the supervisor
  process dies, so nothing short of `service stop` or `service remove` leaves it down.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

RESTART_EXIT_CODE = 75  # EX_TEMPFAIL: the program asks to be started again (self-update)


@dataclass(frozen=True)
class FailureAction:
    """One SCM failure action: restart the service after `delay_seconds`."""

    delay_seconds: int


@dataclass(frozen=True)
class RestartPolicy:
    first_crash_delay: float = 5.0
    max_crash_delay: float = 300.0
    stable_after: float = 600.0

    def delay_after(self, exit_code: int, consecutive_crashes: int) -> float:
        """Seconds to wait before starting the command again after it exited with `exit_code`,
        the `consecutive_crashes`-th quick crash in a row (1 for the first)."""
        if exit_code == RESTART_EXIT_CODE:
            return 0.0
        delay = self.first_crash_delay * (2 ** max(0, consecutive_crashes - 1))
        return min(delay, self.max_crash_delay)


@dataclass(frozen=True)
class LogRotation:
    path: Path
    max_bytes: int = 10 * 1024 * 1024
    backup_count: int = 10


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    display_name: str
    description: str
    command: tuple[str, ...]
    working_dir: Path
    log: LogRotation
    # DOMAIN\\user of the account with Windows-authenticated access to SQL Server; None is
    # LocalSystem, which normally has none.
    account: str | None = None
    start_type: str = "delayed-auto"  # after the network and SQL Server are up at boot
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    failure_actions: tuple[FailureAction, ...] = (
        FailureAction(10),
        FailureAction(60),
        FailureAction(300),
    )
    failure_reset_seconds: int = 86400
    stop_timeout_seconds: float = 60.0
    environment: Mapping[str, str] = field(
        default_factory=lambda: {"PYTHONUTF8": "1", "PYTHONIOENCODING": "utf-8"}
    )

    def command_line(self) -> str:
        return subprocess.list2cmdline(self.command)

    def describe(self) -> list[tuple[str, str]]:
        """What `service install` registers, as label/value pairs for a person to read."""
        return [
            ("service name", self.name),
            ("display name", self.display_name),
            ("command", self.command_line()),
            ("working directory", str(self.working_dir)),
            ("account", self.account or "LocalSystem (no SQL Server access by Windows login)"),
            ("start", self.start_type),
            (
                "restart",
                f"exit {RESTART_EXIT_CODE}: at once; other exits: after "
                f"{self.restart.first_crash_delay:g} s doubling up to "
                f"{self.restart.max_crash_delay:g} s",
            ),
            (
                "service failure actions",
                ", ".join(f"restart after {a.delay_seconds} s" for a in self.failure_actions)
                + f" (counter reset after {self.failure_reset_seconds} s)",
            ),
            (
                "log",
                f"{self.log.path} (rotated at {self.log.max_bytes // (1024 * 1024)} MB, "
                f"{self.log.backup_count} kept)",
            ),
            ("stop", f"Ctrl+Break, then terminated after {self.stop_timeout_seconds:g} s"),
        ]

    def to_options(self) -> dict[str, str]:
        """The spec as string options, stored with the service registration (the service
        process reads them back with `from_options`)."""
        return {
            "command": "\x1f".join(self.command),
            "working_dir": str(self.working_dir),
            "log_path": str(self.log.path),
            "log_max_bytes": str(self.log.max_bytes),
            "log_backup_count": str(self.log.backup_count),
            "stop_timeout": str(self.stop_timeout_seconds),
        }

    @classmethod
    def from_options(cls, name: str, display_name: str, options: Mapping[str, str]) -> ServiceSpec:
        return cls(
            name=name,
            display_name=display_name,
            description="",
            command=tuple(options["command"].split("\x1f")),
            working_dir=Path(options["working_dir"]),
            log=LogRotation(
                Path(options["log_path"]),
                int(options["log_max_bytes"]),
                int(options["log_backup_count"]),
            ),
            stop_timeout_seconds=float(options["stop_timeout"]),
        )
