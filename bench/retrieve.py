"""Retrieve the 240-slice CT study from a real Orthanc, several ways, and print the figures.

    python bench/retrieve.py [--repeat 3] [--ct-slices 240]

Cases, each run `--repeat` times into an empty folder (the median is reported):
  gateway move / get   the gateway's path: Retriever.fetch_study (IMAGE-level listing,
                       C-MOVE to its Storage SCP or C-GET, filing, counting, verifying)
  floor move / get     a bare pynetdicom receiver: chunked receive, os.replace, nothing else
  dcmtk move / get     DCMTK's movescu + storescp and getscu, with their defaults and tuned
                       (max PDU 131072, TCP_NODELAY=1)
Ratios: gateway / DCMTK (target <= 1.0) and gateway / floor (aim <= 1.15).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "orthanc-test")]

import demo_studies  # noqa: E402
from orthanc_server import OrthancServer, free_port, wait_until  # noqa: E402
from pydicom.dataset import Dataset  # noqa: E402
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, _config, build_role, dimse_messages, evt  # noqa: E402
from pynetdicom.sop_class import (  # noqa: E402
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from pacs.models import LocalNode, Peer, StudyQuery  # noqa: E402
from pacs.query import find_studies  # noqa: E402
from pacs.retrieve import Retriever  # noqa: E402
from pacs.scp import StorageSCP  # noqa: E402
from pacs.store import StudyStore  # noqa: E402

GATEWAY_AET, FLOOR_AET, DCMTK_AET = "PACSGATEWAY", "FLOORSCP", "STORESCP"
PDU = int(os.environ.get("BENCH_PDU", "131072"))
ORIGINAL_TEMPFILE = tempfile.NamedTemporaryFile
# A case sets up its receiver, yields the transfer to time, and tears the receiver down.
Case = Callable[[Path], AbstractContextManager[Callable[[], None]]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ct-slices", type=int, default=240)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-retrieve-"))
    try:
        run(work, args.repeat, args.ct_slices)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, repeat: int, ct_slices: int) -> None:
    catalog = demo_studies.generate(work / "generated", ct_slices=ct_slices)
    ct = catalog.study("dubois-ext-cbct-2023")
    megabytes = sum(p.stat().st_size for p in ct.files) / 1e6
    ports = {name: free_port() for name in ("gateway", "floor", "dcmtk")}
    modalities = {
        "gateway": (GATEWAY_AET, "127.0.0.1", ports["gateway"]),
        "floor": (FLOOR_AET, "127.0.0.1", ports["floor"]),
        "dcmtk": (DCMTK_AET, "127.0.0.1", ports["dcmtk"]),
    }
    with OrthancServer(work / "orthanc", modalities=modalities) as orthanc:
        demo_studies.store(ct.files, "127.0.0.1", orthanc.dicom_port, orthanc.ae_title)
        print(f"Study: {len(ct.files)} CT slices, {megabytes:.1f} MB, Orthanc 1.10.1 on loopback")
        cases: dict[str, Case] = {
            "gateway move": lambda out: gateway(orthanc, ct.study_uid, out, "move", ports),
            "gateway get": lambda out: gateway(orthanc, ct.study_uid, out, "get", ports),
            "floor move": lambda out: floor_move(orthanc, ct.study_uid, out, ports["floor"]),
            "floor get": lambda out: floor_get(orthanc, ct.study_uid, out),
            "dcmtk move": lambda out: dcmtk_move(orthanc, ct.study_uid, out, ports, tuned=False),
            "dcmtk get": lambda out: dcmtk_get(orthanc, ct.study_uid, out, tuned=False),
            "dcmtk move tuned": lambda out: dcmtk_move(
                orthanc, ct.study_uid, out, ports, tuned=True
            ),
            "dcmtk get tuned": lambda out: dcmtk_get(orthanc, ct.study_uid, out, tuned=True),
        }
        times = {
            name: measure(case, work / "out", len(ct.files), repeat) for name, case in cases.items()
        }
    report(times, megabytes)


def measure(case: Case, out: Path, expected: int, repeat: int) -> float:
    """Median wall time of the transfer alone: receivers are started before the clock
    starts and stopped after it stops, as a running gateway's Storage SCP would be."""
    runs = []
    for _ in range(repeat):
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        with case(out) as transfer:
            started = time.perf_counter()
            transfer()
            runs.append(time.perf_counter() - started)
        received = sum(1 for p in out.rglob("*") if p.is_file() and ".incoming" not in p.parts)
        if received != expected:
            raise SystemExit(f"expected {expected} files, got {received}")
    return statistics.median(runs)


def report(times: dict[str, float], megabytes: float) -> None:
    print(f"\n{'case':<18}{'seconds':>9}{'MB/s':>9}")
    for name, seconds in times.items():
        print(f"{name:<18}{seconds:>9.2f}{megabytes / seconds:>9.1f}")
    print()
    for method in ("move", "get"):
        ours = times[f"gateway {method}"]
        print(
            f"gateway {method}: {ours / times[f'dcmtk {method}']:.2f}x DCMTK defaults, "
            f"{ours / times[f'dcmtk {method} tuned']:.2f}x DCMTK tuned, "
            f"{ours / times[f'floor {method}']:.2f}x the bare pynetdicom floor"
        )


@contextmanager
def gateway(
    orthanc: OrthancServer, study_uid: str, out: Path, method: str, ports: dict
) -> Iterator[Callable[[], None]]:
    local = LocalNode(
        ae_title=GATEWAY_AET, port=ports["gateway"], bind_address="127.0.0.1", maximum_pdu_size=PDU
    )
    peer = Peer(
        ae_title=orthanc.ae_title,
        host="127.0.0.1",
        port=orthanc.dicom_port,
        retrieve_method=method,  # type: ignore[arg-type]
    )
    store = StudyStore(out)
    with StorageSCP(local, store, [orthanc.ae_title]) as scp:
        retriever = Retriever(local, store, scp)

        def transfer() -> None:
            # As a fetch job does: the STUDY-level answer tells what to expect.
            (study,) = find_studies(peer, GATEWAY_AET, StudyQuery(study_uid=study_uid))
            result = retriever.fetch_study(
                peer,
                study_uid,
                expected=study.number_of_instances,
            )
            assert result.received_now == result.expected

        yield transfer


# -- the floor: what pynetdicom alone costs ------------------------------------------------


def _bare_handler(out: Path) -> Callable:
    def handle(event: evt.Event) -> int:
        os.replace(event.dataset_path, out / f"{event.request.AffectedSOPInstanceUID}.dcm")
        return 0x0000

    return handle


def _bare_receive() -> None:
    _config.STORE_RECV_CHUNKED_DATASET = True
    dimse_messages.NamedTemporaryFile = ORIGINAL_TEMPFILE  # undo the gateway's redirection


def _study(study_uid: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study_uid
    return ds


@contextmanager
def floor_move(
    orthanc: OrthancServer, study_uid: str, out: Path, port: int
) -> Iterator[Callable[[], None]]:
    _bare_receive()
    scp_ae = AE(ae_title=FLOOR_AET)
    scp_ae.add_supported_context(CTImageStorage, ALL_TRANSFER_SYNTAXES)
    scp_ae.maximum_pdu_size = PDU
    server = scp_ae.start_server(
        ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, _bare_handler(out))]
    )

    def transfer() -> None:
        ae = AE(ae_title=FLOOR_AET)
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
        assoc = ae.associate("127.0.0.1", orthanc.dicom_port, ae_title=orthanc.ae_title)
        for _status, _ in assoc.send_c_move(
            _study(study_uid), FLOOR_AET, StudyRootQueryRetrieveInformationModelMove
        ):
            pass
        assoc.release()

    try:
        yield transfer
    finally:
        server.shutdown()


@contextmanager
def floor_get(orthanc: OrthancServer, study_uid: str, out: Path) -> Iterator[Callable[[], None]]:
    _bare_receive()
    yield lambda: _floor_get(orthanc, study_uid, out)


def _floor_get(orthanc: OrthancServer, study_uid: str, out: Path) -> None:
    ae = AE(ae_title=FLOOR_AET)
    ae.maximum_pdu_size = PDU
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate(
        "127.0.0.1",
        orthanc.dicom_port,
        ae_title=orthanc.ae_title,
        ext_neg=[build_role(CTImageStorage, scp_role=True)],
        evt_handlers=[(evt.EVT_C_STORE, _bare_handler(out))],
    )
    for _status, _ in assoc.send_c_get(
        _study(study_uid), StudyRootQueryRetrieveInformationModelGet
    ):
        pass
    assoc.release()


# -- DCMTK -----------------------------------------------------------------------------------

# pynetdicom installs scripts named storescp/getscu too: call DCMTK's by path.
DCMTK = Path("/usr/bin")


def _dcmtk_env(tuned: bool) -> dict[str, str]:
    env = dict(os.environ)
    if tuned:
        env["TCP_NODELAY"] = "1"
    return env


def _pdu(tuned: bool) -> list[str]:
    return ["-pdu", str(PDU)] if tuned else []


@contextmanager
def dcmtk_move(
    orthanc: OrthancServer, study_uid: str, out: Path, ports: dict, tuned: bool
) -> Iterator[Callable[[], None]]:
    storescp = subprocess.Popen(
        [
            str(DCMTK / "storescp"),
            "-aet",
            DCMTK_AET,
            "+xa",
            *_pdu(tuned),
            "-od",
            str(out),
            str(ports["dcmtk"]),
        ],
        env=_dcmtk_env(tuned),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if not wait_until(lambda: _listening(ports["dcmtk"]), 10):
            raise SystemExit("storescp did not start")
        yield lambda: subprocess.run(
            [
                str(DCMTK / "movescu"),
                "-S",
                "-aet",
                DCMTK_AET,
                "-aec",
                orthanc.ae_title,
                "-aem",
                DCMTK_AET,
                *_pdu(tuned),
                "-k",
                "QueryRetrieveLevel=STUDY",
                "-k",
                f"StudyInstanceUID={study_uid}",
                "127.0.0.1",
                str(orthanc.dicom_port),
            ],
            check=True,
            env=_dcmtk_env(tuned),
            capture_output=True,
        )
    finally:
        storescp.terminate()
        storescp.wait()


@contextmanager
def dcmtk_get(
    orthanc: OrthancServer, study_uid: str, out: Path, tuned: bool
) -> Iterator[Callable[[], None]]:
    yield lambda: subprocess.run(
        [
            str(DCMTK / "getscu"),
            "-S",
            "-aet",
            "GETSCU",
            "-aec",
            orthanc.ae_title,
            *_pdu(tuned),
            "-od",
            str(out),
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            f"StudyInstanceUID={study_uid}",
            "127.0.0.1",
            str(orthanc.dicom_port),
        ],
        check=True,
        env=_dcmtk_env(tuned),
        capture_output=True,
    )


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


if __name__ == "__main__":
    main()
