"""Run DCMTK's dcmqrscp as a second, independent PACS for tests and benchmarks.

One ``DcmqrscpServer`` owns one dcmqrscp parent process (in its default forking mode: one
child per association; ``--single-process`` crashed on release in 3.6.7), its own process
group, a work directory (config, association profile, log, storage) and one loopback port.
``stop()`` kills the whole process group, so forked children never outlive it.

Transfer syntaxes: dcmqrscp keeps files in the syntax they were stored in, and it cannot
convert compressed files (it has no codecs registered). Incoming it accepts what the
"Incoming" profile lists (every syntax we load, the sender's own first); outgoing (C-MOVE
sub-associations) it proposes what the "Outgoing" profile lists: one context per SOP class
and transfer syntax, so each file can travel as stored.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from orthanc_server import HOST, Modality, c_echo, free_port, wait_until

DCMQRSCP_BINARY = Path("/usr/bin/dcmqrscp")

# dcmqrscp's names for the transfer syntaxes we load (DCMTK's dcxfer.cc spelling).
_SYNTAX_NAMES = {
    "1.2.840.10008.1.2.1": "LittleEndianExplicit",
    "1.2.840.10008.1.2": "LittleEndianImplicit",
    "1.2.840.10008.1.2.5": "RLELossless",
    "1.2.840.10008.1.2.4.70": "JPEGLossless:Non-hierarchical-1stOrderPrediction",
    "1.2.840.10008.1.2.4.80": "JPEGLSLossless",
    "1.2.840.10008.1.2.4.50": "JPEGBaseline",
    "1.2.840.10008.1.2.4.90": "JPEG2000LosslessOnly",
}

# Storage classes the outgoing profile proposes (dcmqrscp needs them named in its profile).
DEFAULT_SOP_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
    "1.2.840.10008.5.1.4.1.1.1",  # CR Image Storage
    "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray For Presentation
    "1.2.840.10008.5.1.4.1.1.1.3",  # Digital Intra-Oral X-Ray For Presentation
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture
    "1.2.840.10008.5.1.4.1.1.7.2",  # Multi-frame Grayscale Byte SC
    "1.2.840.10008.5.1.4.1.1.7.3",  # Multi-frame Grayscale Word SC
    "1.2.840.10008.5.1.4.1.1.7.4",  # Multi-frame True Color SC
    "1.2.840.10008.5.1.4.1.1.77.1.4",  # VL Photographic Image Storage
)
DEFAULT_SYNTAXES = tuple(_SYNTAX_NAMES)


class DcmqrscpError(RuntimeError):
    """dcmqrscp could not be started or stopped."""


class DcmqrscpServer:
    """A dcmqrscp process group on a loopback port with its own storage folder.

    ``hosts`` are its HostTable: the only AE titles it will C-MOVE to (anyone may connect).
    """

    def __init__(
        self,
        work_dir: Path,
        ae_title: str = "DCMQRSCP",
        hosts: dict[str, Modality] | None = None,
        *,
        port: int | None = None,
        sop_classes: Sequence[str] = DEFAULT_SOP_CLASSES,
        syntaxes: Sequence[str] = DEFAULT_SYNTAXES,
        binary: Path = DCMQRSCP_BINARY,
        max_pdu: int = 131072,
    ) -> None:
        self.work_dir = Path(work_dir).resolve()
        self._ae_title = ae_title
        self._hosts = dict(hosts or {})
        self._port = port or free_port()
        self._sop_classes = tuple(sop_classes)
        self._syntaxes = tuple(syntaxes)
        self._binary = binary
        self._max_pdu = max_pdu
        self._process: subprocess.Popen[bytes] | None = None
        self._log_handle: IO[bytes] | None = None

    @property
    def ae_title(self) -> str:
        return self._ae_title

    @property
    def host(self) -> str:
        return HOST

    @property
    def dicom_port(self) -> int:
        return self._port

    @property
    def storage_dir(self) -> Path:
        return self.work_dir / "storage"

    @property
    def config_path(self) -> Path:
        return self.work_dir / "dcmqrscp.cfg"

    @property
    def profile_path(self) -> Path:
        return self.work_dir / "profiles.cfg"

    @property
    def log_path(self) -> Path:
        return self.work_dir / "dcmqrscp.log"

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def config_text(self) -> str:
        hosts = "\n".join(
            f"{name} = ({aet}, {host}, {port})" for name, (aet, host, port) in self._hosts.items()
        )
        return (
            f"NetworkTCPPort  = {self._port}\n"
            f"MaxPDUSize      = {self._max_pdu}\n"
            "MaxAssociations = 16\n"
            "HostTable BEGIN\n"
            f"{hosts}\n"
            "HostTable END\n"
            "VendorTable BEGIN\n"
            "VendorTable END\n"
            "AETable BEGIN\n"
            # Quota: studies, bytes per study; big enough for the 126 MB bench CT.
            f"{self._ae_title} {self.storage_dir} RW (200, 1024mb) ANY\n"
            "AETable END\n"
        )

    def profile_text(self) -> str:
        """Incoming: every class with all our syntaxes; outgoing: one context per pair.

        The incoming acceptor picks by its own order among what the sender proposes in a
        context; a loader proposing one syntax per context gets exactly that one.
        """
        names = [_SYNTAX_NAMES[ts] for ts in self._syntaxes]
        lines = ["[[TransferSyntaxes]]", "[All]"]
        lines += [f"TransferSyntax{n} = {name}" for n, name in enumerate(names, 1)]
        for n, name in enumerate(names, 1):
            lines += [f"[Only{n}]", f"TransferSyntax1 = {name}"]
        lines += ["[[PresentationContexts]]", "[In]"]
        lines += [
            f"PresentationContext{n} = {uid}\\All" for n, uid in enumerate(self._sop_classes, 1)
        ]
        lines += ["[Out]"]
        number = 0
        for uid in self._sop_classes:
            for n in range(1, len(names) + 1):
                number += 1
                lines.append(f"PresentationContext{number} = {uid}\\Only{n}")
        if number > 128:
            raise DcmqrscpError(f"{number} outgoing presentation contexts, 128 allowed")
        # C-GET: the requester (the gateway) takes the SCP role for the storage classes.
        lines += ["[[SCPSCURoleSelection]]", "[GetRoles]"]
        lines += [f"Role{n} = {uid}\\BOTH" for n, uid in enumerate(self._sop_classes, 1)]
        lines += [
            "[[Profiles]]",
            "[Incoming]",
            "SCPSCURoleSelection = GetRoles",
            "PresentationContexts = In",
            "[Outgoing]",
            "PresentationContexts = Out",
        ]
        return "\n".join(lines) + "\n"

    def arguments(self) -> list[str]:
        return [
            str(self._binary),
            "-c",
            str(self.config_path),
            "-xf",
            str(self.profile_path),
            "Incoming",
            "Outgoing",
            "--disable-host-lookup",
        ]

    def start(self, timeout: float = 15) -> None:
        """Spawn dcmqrscp in its own process group and return once C-ECHO answers."""
        if self.is_running:
            return
        if not self._binary.exists():
            raise DcmqrscpError(
                f"{self._binary} not found: install Debian's dcmtk package (./dev test does)"
            )
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text())
        self.profile_path.write_text(self.profile_text())
        self._close_log()
        self._log_handle = self.log_path.open("ab")
        self._process = subprocess.Popen(
            self.arguments(),
            stdin=subprocess.DEVNULL,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            cwd=self.work_dir,
            # Its own group: stop() reaches the children it forks per association.
            start_new_session=True,
        )
        try:
            ready = wait_until(self._ready, timeout)
        except BaseException:
            self.stop()
            raise
        if not ready:
            self.stop()
            raise DcmqrscpError(
                f"dcmqrscp did not answer C-ECHO within {timeout} s on port {self._port}; "
                f"log tail:\n{self.log_tail()}"
            )

    def _ready(self) -> bool:
        if not self.is_running:
            raise DcmqrscpError(f"dcmqrscp exited at start; log tail:\n{self.log_tail()}")
        return c_echo(HOST, self._port, self._ae_title, timeout=1.0)

    def stop(self) -> None:
        """Kill the parent and every forked child; returns once the parent has exited."""
        process = self._process
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            self._process = None
        self._close_log()

    def load(self, files: Iterable[Path]) -> int:
        """C-STORE files as they are (one context per class and syntax); returns the count."""
        import demo_studies

        return demo_studies.store(list(files), HOST, self._port, self._ae_title)

    def stored_files(self) -> list[Path]:
        return sorted(
            p for p in self.storage_dir.rglob("*") if p.is_file() and p.name != "index.dat"
        )

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
        state = f"pid {self._process.pid}" if self.is_running and self._process else "stopped"
        return f"DcmqrscpServer({self._ae_title}@{HOST}:{self._port}, {state})"


__all__ = ["DCMQRSCP_BINARY", "DcmqrscpError", "DcmqrscpServer", "free_port"]
