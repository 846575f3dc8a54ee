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
from typing import Any

from orthanc_server import Modality, c_echo
from server_process import HOST, ServerProcess, dcmtk_environment, free_port

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


class DcmqrscpServer(ServerProcess):
    """A dcmqrscp process group on a loopback port with its own storage folder.

    ``hosts`` are its HostTable: the only AE titles it will C-MOVE to (anyone may connect).
    """

    name = "dcmqrscp"
    package = "dcmtk"
    error = DcmqrscpError
    # stop() kills the whole group outright, as it always has: nothing a test reads
    # depends on dcmqrscp shutting down cleanly.
    stop_signal = signal.SIGKILL

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
        nodelay: bool = False,
    ) -> None:
        super().__init__(work_dir, ae_title, port or free_port(), binary)
        # DCMTK 3.6 keeps Nagle's algorithm on unless TCP_NODELAY=1 is in its environment.
        self._nodelay = nodelay
        self._hosts = dict(hosts or {})
        self._sop_classes = tuple(sop_classes)
        self._syntaxes = tuple(syntaxes)
        self._max_pdu = max_pdu

    @property
    def config_path(self) -> Path:
        return self.work_dir / "dcmqrscp.cfg"

    @property
    def profile_path(self) -> Path:
        return self.work_dir / "profiles.cfg"

    @property
    def log_path(self) -> Path:
        return self.work_dir / "dcmqrscp.log"

    def config_text(self) -> str:
        hosts = "\n".join(
            f"{name} = ({aet}, {host}, {port})" for name, (aet, host, port) in self._hosts.items()
        )
        return (
            f"NetworkTCPPort  = {self._dicom_port}\n"
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

    def write_config(self) -> None:
        self.config_path.write_text(self.config_text())
        self.profile_path.write_text(self.profile_text())

    def _popen_options(self) -> dict[str, Any]:
        # Its own group: stopping reaches the children it forks per association.
        return {"start_new_session": True, "env": dcmtk_environment(self._nodelay)}

    def start(self, timeout: float = 15) -> None:
        """Spawn dcmqrscp in its own process group and return once C-ECHO answers."""
        super().start(timeout)

    def _answers(self) -> bool:
        return c_echo(HOST, self._dicom_port, self._ae_title, timeout=1.0)

    def _signal(self, process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        # The whole group, even when the parent is gone: forked children may outlive it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)

    def _terminate(self, sig: signal.Signals, timeout: float) -> None:
        super()._terminate(sig, timeout)
        # Forgotten, so a second stop cannot signal a group id reused since.
        self._process = None

    def load(self, files: Iterable[Path]) -> int:
        """C-STORE files as they are (one context per class and syntax); returns the count."""
        import demo_studies

        return demo_studies.store(list(files), HOST, self._dicom_port, self._ae_title)

    def stored_files(self) -> list[Path]:
        return sorted(
            p for p in self.storage_dir.rglob("*") if p.is_file() and p.name != "index.dat"
        )


__all__ = ["DCMQRSCP_BINARY", "DcmqrscpError", "DcmqrscpServer", "free_port"]
