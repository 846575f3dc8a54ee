"""One throwaway server process for tests: its Popen, its log file, start-wait-stop-kill.

``ServerProcess`` is the part Orthanc and dcmqrscp share. A subclass writes its own config
files, names its command line and says when it is ready; the base spawns it with its
output appended to ``log_path``, waits for readiness with a deadline, and on any failure
to start kills it, so a failed ``start()`` never leaves a process or an open log behind.
Stopping always waits for the process to exit: a server restarted on the same folder and
ports must not meet the old one's ports or locks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any, ClassVar, Self

HOST = "127.0.0.1"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    The port is only released, not reserved: another process may take it before
    the caller binds it, which is acceptable on a test machine.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``condition`` until it is true or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def dcmtk_environment(nodelay: bool) -> dict[str, str]:
    """The environment for a server built on DCMTK (Orthanc and dcmqrscp both are).

    DCMTK 3.6 keeps Nagle's algorithm on unless TCP_NODELAY=1 is in its environment:
    `nodelay=False` runs it as shipped, whatever the caller's environment says.
    """
    env = {key: value for key, value in os.environ.items() if key != "TCP_NODELAY"}
    if nodelay:
        env["TCP_NODELAY"] = "1"
    return env


class ServerProcess:
    """A server binary run on loopback with its own work folder, storage and log."""

    #: How messages name the server, e.g. "Orthanc".
    name: ClassVar[str]
    #: The Debian package that installs ``binary``.
    package: ClassVar[str]
    #: Raised when the server cannot be started.
    error: ClassVar[type[RuntimeError]] = RuntimeError
    #: What ``stop()`` sends first.
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM

    def __init__(self, work_dir: Path, ae_title: str, dicom_port: int, binary: Path) -> None:
        # Absolute, because the server runs with the work dir as its cwd.
        self.work_dir = Path(work_dir).resolve()
        self._ae_title = ae_title
        self._dicom_port = dicom_port
        self._binary = binary
        self._process: subprocess.Popen[bytes] | None = None
        self._log_handle: IO[bytes] | None = None

    # -- what a subclass provides -------------------------------------------------

    @property
    def log_path(self) -> Path:
        raise NotImplementedError

    def write_config(self) -> None:
        """Write the config files the next start reads."""
        raise NotImplementedError

    def arguments(self) -> list[str]:
        """The command line, binary first."""
        raise NotImplementedError

    def _answers(self) -> bool:
        """True once the running server answers its clients."""
        raise NotImplementedError

    def _popen_options(self) -> dict[str, Any]:
        return {}

    def _ports_text(self) -> str:
        return f"DICOM {self._dicom_port}"

    def _signal(self, process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)

    # -- properties ---------------------------------------------------------------

    @property
    def ae_title(self) -> str:
        return self._ae_title

    @property
    def host(self) -> str:
        return HOST

    @property
    def dicom_port(self) -> int:
        return self._dicom_port

    @property
    def storage_dir(self) -> Path:
        return self.work_dir / "storage"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- lifecycle ----------------------------------------------------------------

    def start(self, timeout: float = 30) -> None:
        """Spawn the server and return once it answers; kill it if it does not in time."""
        if self.is_running:
            return
        if not self._binary.exists():
            raise self.error(
                f"{self._binary} not found: install Debian's {self.package} package "
                "(./dev test does)"
            )
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        self.write_config()
        self._close_log()
        self._log_handle = self.log_path.open("ab")
        self._process = subprocess.Popen(
            self.arguments(),
            stdin=subprocess.DEVNULL,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            cwd=self.work_dir,
            **self._popen_options(),
        )
        try:
            ready = wait_until(self._ready, timeout)
        except BaseException:
            self.kill()
            raise
        if not ready:
            self.kill()
            raise self.error(
                f"{self.name} did not answer within {timeout} s ({self._ports_text()}); "
                f"log tail:\n{self.log_tail()}"
            )

    def _ready(self) -> bool:
        if not self.is_running:
            # Let start() fail at once instead of polling a dead process.
            raise self.error(f"{self.name} exited at start; log tail:\n{self.log_tail()}")
        return self._answers()

    def stop(self, timeout: float = 10) -> None:
        """Stop with ``stop_signal``, SIGKILL after ``timeout``; returns once exited."""
        self._terminate(self.stop_signal, timeout)

    def kill(self) -> None:
        """Crash the server (SIGKILL), as a power cut would; returns once exited."""
        self._terminate(signal.SIGKILL, 5)

    def _terminate(self, sig: signal.Signals, timeout: float) -> None:
        process = self._process
        if process is not None:
            self._signal(process, sig)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                # Waiting is what guarantees ports and locks are released before
                # anyone starts a server on the same folder.
                process.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.is_running else "stopped"
        return f"{type(self).__name__}({self._ae_title}@{HOST}, {self._ports_text()}, {state})"


__all__ = ["HOST", "ServerProcess", "free_port", "wait_until"]
