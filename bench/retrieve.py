"""The whole fetch job against the bare pynetdicom floor, from Orthanc and from dcmqrscp.

    python bench/retrieve.py [--repeat 3] [--ct-slices 240]
                 [--pacs orthanc,orthanc-default,dcmqrscp,dcmqrscp-nodelay]

Each PACS holds the 240-slice 512x512 CT (Explicit VR). Each runs twice: with DCMTK's default
(Orthanc is built on DCMTK too), which keeps Nagle's algorithm on, so each of its answers
would wait about 40 ms for our delayed ACK if the gateway did not ask for quick ACKs (the job
makes two or three C-FIND exchanges before its first image, the floor none); and with
TCP_NODELAY=1 in its environment, as docs/configuration.md advises. The names: "orthanc"
(TCP_NODELAY=1, as the tests run it) and "orthanc-default"; "dcmqrscp" (DCMTK's default, as
the tests run it) and "dcmqrscp-nodelay".
Cases, alternated, `--repeat` rounds, median reported:
  job move / get   a real `pacs-gateway serve` process: from `POST /api/v1/fetches` until a
                   20 ms poll of the job sees `succeeded` (planning C-FIND, retrieve,
                   the IMAGE-level listing when the PACS's counts do not vouch for what
                   landed, filing, index writes, job bookkeeping)
  floor get        bare pynetdicom C-GET, chunked receive, os.replace, nothing else
  floor move       bare pynetdicom C-MOVE to a bare pynetdicom Storage SCP, same receive
  floor get tuned  the floor get with the gateway's own socket options
                   (pacs.association.TCP_HANDLERS: TCP_NODELAY, and on Linux TCP_QUICKACK
                   after each PDU sent)
Ratios: job / floor get of the same PACS (target <= 1.15 for both methods), and job / floor
get tuned, so that no part of the figure comes from the socket options alone; then each
round's job against that round's floor, lowest and highest, since the machine's own noise
moves a single figure by 10-20 %.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "orthanc-test"), str(ROOT / "tests" / "gateway")]

import demo_studies  # noqa: E402
import httpx  # noqa: E402
from dcmqrscp_server import DcmqrscpServer  # noqa: E402
from orthanc_server import OrthancServer, free_port  # noqa: E402
from pydicom.dataset import Dataset  # noqa: E402
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, _config, build_role, dimse_messages, evt  # noqa: E402
from pynetdicom.sop_class import (  # noqa: E402
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)
from serve_process import ServeProcess  # noqa: E402

from gateway.core.database import open_database  # noqa: E402
from gateway.core.keys import KeyStore  # noqa: E402
from gateway.core.settings import PacsSettings, Settings  # noqa: E402
from pacs.association import TCP_HANDLERS  # noqa: E402

GATEWAY_AET, FLOOR_AET = "PACSGATEWAY", "FLOORSCP"
PDU = int(os.environ.get("BENCH_PDU", "131072"))
POLL_SECONDS = 0.02
ORIGINAL_TEMPFILE = tempfile.NamedTemporaryFile
Transfer = Callable[[Path], None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ct-slices", type=int, default=240)
    parser.add_argument("--pacs", default="orthanc,orthanc-default,dcmqrscp,dcmqrscp-nodelay")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-retrieve-"))
    try:
        run(work, args.repeat, args.ct_slices, args.pacs.split(","))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, repeat: int, ct_slices: int, which: list[str]) -> None:
    catalog = demo_studies.generate(work / "generated", ct_slices=ct_slices)
    ct = catalog.study("dubois-ext-cbct-2023")
    megabytes = sum(p.stat().st_size for p in ct.files) / 1e6
    ports = {"gateway": free_port(), "floor": free_port()}
    peers = {
        "gateway": (GATEWAY_AET, "127.0.0.1", ports["gateway"]),
        "floor": (FLOOR_AET, "127.0.0.1", ports["floor"]),
    }
    print(f"Study: {len(ct.files)} CT slices, {megabytes:.1f} MB, loopback, max PDU {PDU}")
    with ExitStack() as stack:
        servers: dict[str, OrthancServer | DcmqrscpServer] = {}
        for name in ("orthanc", "orthanc-default"):
            if name in which:
                orthanc = stack.enter_context(
                    OrthancServer(work / name, modalities=peers, nodelay=name == "orthanc")
                )
                # Over REST: a C-STORE into an Orthanc with Nagle on waits ~45 ms per image.
                orthanc.upload(ct.files)
                servers[name] = orthanc
        for name in ("dcmqrscp", "dcmqrscp-nodelay"):
            if name in which:
                dcmqrscp = stack.enter_context(
                    DcmqrscpServer(work / name, hosts=peers, nodelay=name.endswith("nodelay"))
                )
                dcmqrscp.load(ct.files)
                servers[name] = dcmqrscp
        serve, api = stack.enter_context(_serve(work, servers, ports["gateway"]))
        cases: dict[str, Transfer] = {}
        for name, server in servers.items():
            for method in ("move", "get"):
                cases[f"{name} job {method}"] = _job(api, serve, f"{name}-{method}", ct)
            cases[f"{name} floor get"] = lambda out, s=server: floor_get(s, ct.study_uid, out)
            cases[f"{name} floor get tuned"] = lambda out, s=server: floor_get(
                s, ct.study_uid, out, tuned=True
            )
            cases[f"{name} floor move"] = lambda out, s=server: floor_move(
                s, ct.study_uid, out, ports["floor"]
            )
        times: dict[str, list[float]] = {name: [] for name in cases}
        # Alternated: each round runs every case once, so drift hits all of them alike.
        for _ in range(repeat):
            for name, case in cases.items():
                times[name].append(measure(case, work / "out", len(ct.files)))
    report(times, megabytes, servers)


def measure(case: Transfer, out: Path, expected: int) -> float:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    started = time.perf_counter()
    received = case(out)
    elapsed = time.perf_counter() - started
    count = received if isinstance(received, int) else sum(1 for p in out.rglob("*.dcm"))
    if count != expected:
        raise SystemExit(f"expected {expected} files, got {count}")
    return elapsed


def report(runs: dict[str, list[float]], megabytes: float, servers: dict) -> None:
    times = {name: statistics.median(seconds) for name, seconds in runs.items()}
    print(f"\n{'case':<36}{'seconds':>9}{'MB/s':>9}")
    for name, seconds in times.items():
        print(f"{name:<36}{seconds:>9.2f}{megabytes / seconds:>9.1f}")
    print()
    for name in servers:
        floor = times[f"{name} floor get"]
        print(
            f"{name}: job move {times[f'{name} job move'] / floor:.2f}x, "
            f"job get {times[f'{name} job get'] / floor:.2f}x the bare C-GET floor "
            f"(floor move {times[f'{name} floor move'] / floor:.2f}x)"
        )
        tuned = times[f"{name} floor get tuned"]
        print(
            f"{name}: job move {times[f'{name} job move'] / tuned:.2f}x, "
            f"job get {times[f'{name} job get'] / tuned:.2f}x "
            "the C-GET floor with the gateway's socket options"
        )
        # The machine's noise, made visible: each round's job against that round's floor.
        spread = {
            method: [
                job / floor
                for job, floor in zip(
                    runs[f"{name} job {method}"], runs[f"{name} floor get"], strict=True
                )
            ]
            for method in ("move", "get")
        }
        print(
            f"{name}: per round, job move {min(spread['move']):.2f}-{max(spread['move']):.2f}x, "
            f"job get {min(spread['get']):.2f}-{max(spread['get']):.2f}x the bare C-GET floor"
        )


# -- the whole job, through a real serve process ------------------------------------------


@contextmanager
def _serve(
    work: Path, servers: dict[str, OrthancServer | DcmqrscpServer], scp_port: int
) -> Iterator[tuple[ServeProcess, httpx.Client]]:
    pacs = [
        PacsSettings(
            name=f"{name}-{method}",
            ae_title=server.ae_title,
            host="127.0.0.1",
            port=server.dicom_port,
            retrieve_method=method,  # type: ignore[arg-type]
        )
        for name, server in servers.items()
        for method in ("move", "get")
    ]
    settings = Settings(
        ae_title=GATEWAY_AET,
        dicom_port=scp_port,
        dicom_bind="127.0.0.1",
        data_dir=work / "gateway",
        pacs=pacs,
    )
    engine = open_database(settings.database_url)
    _, key = KeyStore(engine).create("bench", "service")
    engine.dispose()
    serve = ServeProcess(settings, work)
    serve.start()
    api = httpx.Client(
        base_url=f"http://127.0.0.1:{serve.http_port}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    try:
        yield serve, api
    finally:
        api.close()
        serve.stop()


def _job(api: httpx.Client, serve: ServeProcess, pacs: str, study) -> Transfer:
    studies = serve.settings.studies_dir

    def transfer(out: Path) -> int:
        shutil.rmtree(studies / study.study_uid, ignore_errors=True)
        accepted = api.post(
            "/api/v1/fetches",
            json={
                "pacs": pacs,
                "pacs_patient_id": study.patient_id,
                "study_uids": [study.study_uid],
            },
        )
        accepted.raise_for_status()
        location = accepted.headers["Location"]
        etag = ""
        while True:
            # As a client should poll: with the last ETag, so an unchanged job costs a 304.
            poll = api.get(location, headers={"If-None-Match": etag} if etag else {})
            if poll.status_code != 304:
                etag, state = poll.headers.get("ETag", ""), poll.json()
                if state["state"] == "succeeded":
                    break
                if state["state"] in ("failed", "cancelled", "needs_review"):
                    raise SystemExit(f"the {pacs} job ended {state['state']}: {state['message']}")
            time.sleep(POLL_SECONDS)  # the client's poll cadence is part of what is measured
        return sum(1 for _ in (studies / study.study_uid).rglob("*.dcm"))

    return transfer


# -- the floor: what pynetdicom alone costs ------------------------------------------------


def _bare_handler(out: Path) -> Callable:
    def handle(event: evt.Event) -> int:
        os.replace(event.dataset_path, out / f"{event.request.AffectedSOPInstanceUID}.dcm")
        return 0x0000

    return handle


def _bare_receive() -> None:
    _config.STORE_RECV_CHUNKED_DATASET = True
    dimse_messages.NamedTemporaryFile = ORIGINAL_TEMPFILE


def _study(study_uid: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study_uid
    return ds


def floor_move(server, study_uid: str, out: Path, port: int) -> None:
    _bare_receive()
    scp_ae = AE(ae_title=FLOOR_AET)
    scp_ae.add_supported_context(CTImageStorage, ALL_TRANSFER_SYNTAXES)
    scp_ae.maximum_pdu_size = PDU
    scp = scp_ae.start_server(
        ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, _bare_handler(out))]
    )
    try:
        ae = AE(ae_title=FLOOR_AET)
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
        assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title=server.ae_title)
        for _status, _ in assoc.send_c_move(
            _study(study_uid), FLOOR_AET, StudyRootQueryRetrieveInformationModelMove
        ):
            pass
        assoc.release()
    finally:
        scp.shutdown()


def floor_get(server, study_uid: str, out: Path, *, tuned: bool = False) -> None:
    _bare_receive()
    ae = AE(ae_title=FLOOR_AET)
    ae.maximum_pdu_size = PDU
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate(
        "127.0.0.1",
        server.dicom_port,
        ae_title=server.ae_title,
        ext_neg=[build_role(CTImageStorage, scp_role=True)],
        evt_handlers=[
            (evt.EVT_C_STORE, _bare_handler(out)),
            *(TCP_HANDLERS if tuned else []),
        ],
    )
    for _status, _ in assoc.send_c_get(
        _study(study_uid), StudyRootQueryRetrieveInformationModelGet
    ):
        pass
    assoc.release()


if __name__ == "__main__":
    main()
