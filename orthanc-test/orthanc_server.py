"""Run Debian's Orthanc as a throwaway PACS for tests and the demo.

One ``OrthancServer`` owns one Orthanc process, a work directory (config, log,
storage and SQLite index) and two loopback ports. ``stop()`` then ``start()``
brings the same server back on the same ports with the same data, which is how
tests simulate a PACS outage.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import signal
import socket
import ssl
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from server_process import HOST, ServerProcess, dcmtk_environment, free_port, wait_until

ORTHANC_BINARY = Path("/usr/sbin/Orthanc")
TEMPLATE_PATH = Path(__file__).with_name("orthanc.json.template")

_PR_SET_PDEATHSIG = 1

Modality = tuple[str, str, int]
# Orthanc's object form of a modality, e.g. with "UseDicomTls": true.
ModalityEntry = Modality | dict[str, Any]


class OrthancError(RuntimeError):
    """Orthanc could not be started, stopped or queried."""


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: ask the kernel to SIGKILL Orthanc
    # when the thread that spawned it dies, so a killed pytest leaves no server
    # holding ports and the SQLite lock behind.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """Parse the config template: JSON with full-line ``//`` comments."""
    lines = [ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("//")]
    config: dict[str, Any] = json.loads("\n".join(lines))
    return config


def c_echo(
    host: str,
    port: int,
    called_aet: str,
    calling_aet: str = "ECHOSCU",
    timeout: float = 2.0,
    tls: ssl.SSLContext | None = None,
) -> bool:
    """True if the peer accepts an association (over TLS with `tls`) and answers C-ECHO
    with success."""
    ae = AE(ae_title=calling_aet)
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.connection_timeout = timeout
    tls_args = (tls, host) if tls is not None else None
    assoc = ae.associate(host, port, ae_title=called_aet, tls_args=tls_args)
    if not assoc.is_established:
        return False
    try:
        status = assoc.send_c_echo()
        return bool(status) and status.Status == 0x0000
    finally:
        assoc.release()


class OrthancServer(ServerProcess):
    """An Orthanc process on loopback ports with its own storage folder."""

    name = "Orthanc"
    package = "orthanc"
    error = OrthancError

    def __init__(
        self,
        work_dir: Path,
        ae_title: str = "ORTHANC",
        modalities: dict[str, ModalityEntry] | None = None,
        *,
        dicom_port: int | None = None,
        http_port: int | None = None,
        binary: Path = ORTHANC_BINARY,
        config_overrides: dict[str, Any] | None = None,
        nodelay: bool = True,
        echo_tls: ssl.SSLContext | None = None,
        ready_by_echo: bool = True,
    ) -> None:
        """`echo_tls`: the client context the readiness C-ECHO uses, for an Orthanc whose
        DICOM port speaks TLS (`DicomTlsEnabled` in `config_overrides`). `ready_by_echo`
        False: ready once REST answers and the DICOM port accepts connections (a server
        no C-ECHO can reach, such as one with an expired certificate)."""
        super().__init__(work_dir, ae_title, dicom_port or free_port(), binary)
        # Orthanc's DCMTK writes each C-STORE response as 12 + 158 bytes, and with Nagle on
        # the second waits for the sender's delayed ACK: about 45 ms per received instance
        # (a 240-slice CT took 14 s to store instead of 3 s). Off by default here.
        self._nodelay = nodelay
        # Kept here as well as in Orthanc so a restart re-registers modalities
        # added through the REST API (Orthanc keeps those in memory only).
        self._modalities: dict[str, ModalityEntry] = dict(modalities or {})
        self._echo_tls = echo_tls
        self._ready_by_echo = ready_by_echo
        self._http_port = http_port or free_port()
        while self._http_port == self._dicom_port and http_port is None:
            self._http_port = free_port()
        self._overrides = dict(config_overrides or {})
        self._client: httpx.Client | None = None

    # -- properties ---------------------------------------------------------------

    @property
    def http_port(self) -> int:
        return self._http_port

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._http_port}"

    @property
    def config_path(self) -> Path:
        return self.work_dir / "orthanc.json"

    @property
    def log_path(self) -> Path:
        return self.work_dir / "orthanc.log"

    @property
    def modalities(self) -> dict[str, ModalityEntry]:
        return dict(self._modalities)

    # -- lifecycle ----------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """The configuration this server is (re)started with."""
        config = load_template()
        config.update(self._overrides)
        config.update(
            {
                "Name": f"pacs-gateway test PACS {self._ae_title}",
                "DicomAet": self._ae_title,
                "DicomPort": self._dicom_port,
                "HttpPort": self._http_port,
                "StorageDirectory": str(self.storage_dir),
                "IndexDirectory": str(self.storage_dir),
                "DicomModalities": {
                    name: entry if isinstance(entry, dict) else list(entry)
                    for name, entry in self._modalities.items()
                },
            }
        )
        return config

    def write_config(self) -> None:
        self.config_path.write_text(json.dumps(self.config(), indent=2))

    def arguments(self) -> list[str]:
        return [str(self._binary), str(self.config_path)]

    def _popen_options(self) -> dict[str, Any]:
        return {"env": dcmtk_environment(self._nodelay), "preexec_fn": _die_with_parent}

    def start(self, timeout: float = 30) -> None:
        """Spawn Orthanc and return once both REST and C-ECHO answer.

        Orthanc gets SIGKILL when the *thread* that called start() ends (that is
        how PR_SET_PDEATHSIG works): call it from the main thread or from one that
        outlives the server.
        """
        super().start(timeout)

    def _answers(self) -> bool:
        try:
            self._http().get("/system", timeout=1.0).raise_for_status()
        except httpx.HTTPError:
            return False
        if not self._ready_by_echo:
            try:
                socket.create_connection((HOST, self._dicom_port), timeout=1.0).close()
            except OSError:
                return False
            return True
        return c_echo(HOST, self._dicom_port, self._ae_title, timeout=1.0, tls=self._echo_tls)

    def _ports_text(self) -> str:
        return f"DICOM {self._dicom_port}, HTTP {self._http_port}"

    def _terminate(self, sig: signal.Signals, timeout: float) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        # Waiting for the exit is what releases the SQLite index lock.
        super()._terminate(sig, timeout)

    # -- REST helpers -------------------------------------------------------------

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(base_url=self.url, timeout=30.0)
        return self._client

    def rest_get(self, path: str) -> Any:
        response = self._http().get(path)
        response.raise_for_status()
        return response.json()

    def rest_post(self, path: str, body: Any) -> Any:
        response = self._http().post(path, json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    def add_modality(self, name: str, aet: str, host: str, port: int) -> None:
        """Register (or replace) a DICOM peer, e.g. a move destination."""
        self._modalities[name] = (aet, host, port)
        if self.is_running:
            response = self._http().put(
                f"/modalities/{name}", json={"AET": aet, "Host": host, "Port": port}
            )
            response.raise_for_status()

    def remove_modality(self, name: str) -> None:
        self._modalities.pop(name, None)
        if self.is_running:
            response = self._http().delete(f"/modalities/{name}")
            if response.status_code != 404:
                response.raise_for_status()

    def orthanc_modalities(self) -> dict[str, Any]:
        """The modalities as Orthanc itself currently knows them."""
        result: dict[str, Any] = self.rest_get("/modalities?expand")
        return result

    def _find(self, level: str, query: dict[str, str]) -> list[str]:
        ids: list[str] = self.rest_post("/tools/find", {"Level": level, "Query": query})
        return ids

    def instance_id(self, sop_instance_uid: str) -> str:
        ids = self._find("Instance", {"SOPInstanceUID": sop_instance_uid})
        if len(ids) != 1:
            raise OrthancError(f"{len(ids)} instances with SOPInstanceUID {sop_instance_uid}")
        return ids[0]

    def instance_file(self, sop_instance_uid: str) -> bytes:
        """The stored Part-10 file (Orthanc rewrites its file meta header)."""
        response = self._http().get(f"/instances/{self.instance_id(sop_instance_uid)}/file")
        response.raise_for_status()
        return response.content

    def study_instance_uids(self, study_uid: str) -> set[str]:
        """SOPInstanceUIDs Orthanc holds for a study (empty if it has none)."""
        study_ids = self._find("Study", {"StudyInstanceUID": study_uid})
        uids: set[str] = set()
        for study_id in study_ids:
            for instance in self.rest_get(f"/studies/{study_id}/instances"):
                uids.add(instance["MainDicomTags"]["SOPInstanceUID"])
        return uids

    def study_uids(self) -> set[str]:
        studies = self.rest_get("/studies?expand")
        return {s["MainDicomTags"]["StudyInstanceUID"] for s in studies}

    def instance_count(self) -> int:
        return int(self.rest_get("/statistics")["CountInstances"])

    def delete_study(self, study_uid: str) -> None:
        for study_id in self._find("Study", {"StudyInstanceUID": study_uid}):
            self._http().delete(f"/studies/{study_id}").raise_for_status()

    def delete_instances(self, sop_instance_uids: Iterable[str]) -> None:
        """Remove single instances, e.g. to make a study incomplete on the PACS."""
        for uid in sop_instance_uids:
            self._http().delete(f"/instances/{self.instance_id(uid)}").raise_for_status()

    def delete_all(self) -> None:
        for patient_id in self.rest_get("/patients"):
            self._http().delete(f"/patients/{patient_id}").raise_for_status()

    def upload(self, paths: Iterable[Path]) -> None:
        """Store files through REST, for tests that need data but not a C-STORE."""
        for path in paths:
            response = self._http().post(
                "/instances",
                content=Path(path).read_bytes(),
                headers={"Content-Type": "application/dicom"},
            )
            response.raise_for_status()


def process_exists(pid: int) -> bool:
    """True if ``pid`` is a live (non-zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # Field 3, after the parenthesised command name, is the state; Z is a zombie.
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


__all__ = [
    "HOST",
    "ORTHANC_BINARY",
    "Modality",
    "ModalityEntry",
    "OrthancError",
    "OrthancServer",
    "c_echo",
    "free_port",
    "load_template",
    "process_exists",
    "wait_until",
]

if __name__ == "__main__":  # pragma: no cover - manual smoke run
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, OrthancServer(Path(tmp)) as server:
        print(f"{server!r} up; Ctrl-C to stop", file=sys.stderr)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
