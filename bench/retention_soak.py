"""Soak: fetches cycling over many patients into a store a fifth their size.

    python bench/retention_soak.py [--fetches 1000] [--patients 50]

Orthanc holds one two-image study per patient (made from the demo's intraoral study, new
UIDs and ids). A real `pacs-gateway serve` process, with `storage_max_gb` at one fifth of all
the studies together, fetches them patient after patient, round and round, over the HTTP API,
so each fetch after the first few makes its room by removing the least recently used study.
Checked and printed:
- the store (files under its root, held-back copies aside) never holds more than the limit
  plus the study in flight;
- at the end every indexed instance is on disk and every file on disk is indexed;
- RSS and open file descriptors of `serve` over the last 100 fetches against the first 100
  (target: within 10 %).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "orthanc-test"), str(ROOT / "tests" / "gateway")]

import demo_studies  # noqa: E402
import httpx  # noqa: E402
import psutil  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from orthanc_server import OrthancServer, free_port  # noqa: E402
from pydicom import dcmread  # noqa: E402
from serve_process import ServeProcess  # noqa: E402

from gateway.core.database import open_database  # noqa: E402
from gateway.core.keys import KeyStore  # noqa: E402
from gateway.core.models import instance  # noqa: E402
from gateway.core.settings import PacsSettings, Settings  # noqa: E402

GATEWAY_AET = "PACSGATEWAY"
TEMPLATE = "dubois-io-2024"
POLL_SECONDS = 0.02
WINDOW = 100


def make_patients(work: Path, count: int) -> list[tuple[str, list[Path]]]:
    catalog = demo_studies.generate(work / "demo")
    template = catalog.study(TEMPLATE)
    patients = []
    for n in range(count):
        patient_id = f"SOAK-{n:03d}"
        study_uid = demo_studies.uid("soak", n)
        files = []
        for number, path in enumerate(template.files):
            ds = dcmread(path)
            ds.PatientID = patient_id
            ds.PatientName = f"Soak^Patient{n:03d}"
            ds.StudyInstanceUID = study_uid
            ds.SeriesInstanceUID = demo_studies.uid("soak", n, "series", number)
            ds.SOPInstanceUID = demo_studies.uid("soak", n, "image", number)
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            out = work / "soak" / patient_id / f"{number}.dcm"
            out.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(out, enforce_file_format=True)
            files.append(out)
        patients.append((patient_id, files))
    return patients


def store_bytes(root: Path) -> int:
    """Bytes of the study files now; a study removed while it is being counted counts 0."""
    total = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # .incoming, .held
        for name in files:
            if name.endswith(".dcm"):
                with contextlib.suppress(FileNotFoundError):
                    total += os.stat(os.path.join(folder, name)).st_size
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fetches", type=int, default=1000)
    parser.add_argument("--patients", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        patients = make_patients(work, args.patients)
        total = sum(f.stat().st_size for _, files in patients for f in files)
        largest = max(sum(f.stat().st_size for f in files) for _, files in patients)
        limit = total / 5
        scp_port = free_port()
        with OrthancServer(
            work / "orthanc", modalities={"gateway": (GATEWAY_AET, "127.0.0.1", scp_port)}
        ) as orthanc:
            orthanc.upload([f for _, files in patients for f in files])
            settings = Settings(
                ae_title=GATEWAY_AET,
                dicom_port=scp_port,
                dicom_bind="127.0.0.1",
                data_dir=work / "gateway",
                storage_max_gb=limit / 1e9,
                storage_min_free_gb=0,
                # Fetches follow each other within seconds here: no study counts as being
                # looked at, or none could ever make room.
                storage_in_use_minutes=0,
                pacs=[
                    PacsSettings(
                        name="soak",
                        ae_title=orthanc.ae_title,
                        host="127.0.0.1",
                        port=orthanc.dicom_port,
                    )
                ],
            )
            engine = open_database(settings.database_url)
            _, key = KeyStore(engine).create("soak", "service")
            serve = ServeProcess(settings, work)
            serve.start()
            process = psutil.Process(serve.process.pid)
            api = httpx.Client(
                base_url=f"http://127.0.0.1:{serve.http_port}",
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )
            peak, samples, failed = 0, [], 0
            started = time.perf_counter()
            try:
                for n in range(args.fetches):
                    patient_id, _ = patients[n % len(patients)]
                    accepted = api.post("/api/v1/fetches", json={"pacs_patient_id": patient_id})
                    accepted.raise_for_status()
                    location = accepted.headers["Location"]
                    while True:
                        state = api.get(location).json()
                        if state["state"] in ("succeeded", "failed", "cancelled", "needs_review"):
                            break
                        peak = max(peak, store_bytes(settings.studies_dir))
                        time.sleep(POLL_SECONDS)
                    if state["state"] != "succeeded":
                        failed += 1
                        print(f"fetch {n}: {state['state']}: {state['message']}")
                    peak = max(peak, store_bytes(settings.studies_dir))
                    samples.append((process.memory_info().rss, process.num_fds()))
            finally:
                api.close()
                serve.stop()
            seconds = time.perf_counter() - started
            with engine.connect() as conn:
                indexed = {
                    settings.studies_dir / p for p in conn.scalars(sa.select(instance.c.path))
                }
            engine.dispose()
            on_disk = {
                p for p in settings.studies_dir.glob("*/*/*.dcm") if not p.parts[-3].startswith(".")
            }
    window = min(WINDOW, len(samples) // 2) or 1
    first, last = samples[:window], samples[-window:]
    rss_ratio = statistics.mean(r for r, _ in last) / statistics.mean(r for r, _ in first)
    fds_ratio = statistics.mean(f for _, f in last) / statistics.mean(f for _, f in first)
    print(
        f"{args.fetches} fetches over {args.patients} patients in {seconds:.0f} s "
        f"({failed} not succeeded); studies {total / 1e6:.1f} MB in all, limit "
        f"{limit / 1e6:.1f} MB, largest study {largest / 1e6:.1f} MB"
    )
    print(
        f"store peak {peak / 1e6:.1f} MB: "
        f"{'within' if peak <= limit + largest else 'OVER'} the limit plus the study in flight"
    )
    print(
        f"index and disk: {len(indexed)} indexed, {len(on_disk)} on disk, "
        f"{len(indexed - on_disk)} indexed but missing, {len(on_disk - indexed)} not indexed"
    )
    print(
        f"serve RSS last {window} / first {window}: {rss_ratio:.2f}; open fds {fds_ratio:.2f} "
        f"({'within' if max(rss_ratio, fds_ratio) <= 1.10 else 'OVER'} 10 %)"
    )


if __name__ == "__main__":
    main()
