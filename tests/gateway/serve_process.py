"""Run `pacs-gateway serve` as a real process, as the service manager would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from orthanc_server import free_port, wait_until

from gateway.core.settings import Settings


def write_config(path: Path, settings: Settings) -> Path:
    """The TOML file `serve --config` reads, from a Settings object."""
    lines = []
    for key, value in settings.model_dump(mode="json", exclude={"pacs"}).items():
        if value is None or value == []:
            continue
        lines.append(f"{key} = {_toml(value)}")
    for entry in settings.pacs:
        lines.append("\n[[pacs]]")
        lines += [
            f"{k} = {_toml(v)}" for k, v in entry.model_dump(mode="json").items() if v is not None
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):  # `[r4]` as an inline table; "" there means unset
        return (
            "{"
            + ", ".join(f"{k} = {_toml('' if v is None else v)}" for k, v in value.items())
            + "}"
        )
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


class ServeProcess:
    def __init__(self, settings: Settings, workdir: Path, name: str = "serve") -> None:
        self.http_port = free_port()
        self.settings = settings.model_copy(update={"http_port": self.http_port})
        self.config = write_config(workdir / f"{name}.toml", self.settings)
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--config", str(self.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        if not wait_until(self._healthy, timeout, interval=0.1):
            self.kill()
            raise RuntimeError(f"serve did not come up:\n{self.log_tail()}")

    def _healthy(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"serve exited:\n{self.log_tail()}")
        try:
            return httpx.get(f"http://127.0.0.1:{self.http_port}/health", timeout=1).is_success
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout: float = 30) -> bool:
        """SIGTERM, as a service manager stops it; True if it shut down gracefully.

        uvicorn re-raises the signal once its shutdown is complete, so a graceful stop ends
        "killed by SIGTERM" (which systemd counts as success) after the shutdown log line.
        """
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        return code in (0, -signal.SIGTERM) and "Application shutdown complete" in self.log_tail()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
