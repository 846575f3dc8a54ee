"""Interactive first: a fetch a person asks for, while a prefetch backlog is queued.

    python bench/priority.py [--ct-slices 240] [--backlog 40] [--repeat 3]

Orthanc holds the demo's CT (240 slices) and `--backlog` small two-image studies, one per
patient. A real `pacs-gateway serve` process (two workers, one kept for interactive work)
fetches the CT over the API, from `POST /api/v1/fetches` until a poll sees `succeeded`:
first on an idle gateway, then right after `--backlog` prefetch fetches (jobs.BACKGROUND)
were queued. Medians of `--repeat` rounds, each round alternating the two cases, the CT
removed from the store before each fetch. Target: with the backlog <= 1.3x idle.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "orthanc-test"), str(ROOT / "tests" / "gateway")]

import demo_studies  # noqa: E402
import httpx  # noqa: E402
from orthanc_server import OrthancServer, free_port  # noqa: E402
from pydicom import dcmread  # noqa: E402
from serve_process import ServeProcess  # noqa: E402

import jobs  # noqa: E402
from gateway.core.database import open_database  # noqa: E402
from gateway.core.keys import KeyStore  # noqa: E402
from gateway.core.settings import PacsSettings, Settings  # noqa: E402
from gateway.fetch.job import FETCH_KIND  # noqa: E402
from gateway.fetch.request import FetchRequest, FetchTarget  # noqa: E402

GATEWAY_AET = "PACSGATEWAY"
POLL_SECONDS = 0.02


def backlog_studies(work: Path, catalog, count: int) -> list[tuple[str, list[Path]]]:
    template = catalog.study("dubois-io-2024")
    made = []
    for n in range(count):
        patient_id = f"BACKLOG-{n:03d}"
        files = []
        for number, path in enumerate(template.files):
            ds = dcmread(path)
            ds.PatientID = patient_id
            ds.StudyInstanceUID = demo_studies.uid("backlog", n)
            ds.SeriesInstanceUID = demo_studies.uid("backlog", n, "series", number)
            ds.SOPInstanceUID = demo_studies.uid("backlog", n, "image", number)
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            out = work / "backlog" / patient_id / f"{number}.dcm"
            out.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(out, enforce_file_format=True)
            files.append(out)
        made.append((patient_id, files))
    return made


def fetch_ct(api: httpx.Client, ct, studies_dir: Path) -> float:
    shutil.rmtree(studies_dir / ct.study_uid, ignore_errors=True)
    started = time.perf_counter()
    accepted = api.post(
        "/api/v1/fetches",
        json={"pacs_patient_id": ct.patient_id, "study_uids": [ct.study_uid]},
    )
    accepted.raise_for_status()
    location = accepted.headers["Location"]
    while True:
        state = api.get(location).json()
        if state["state"] == "succeeded":
            return time.perf_counter() - started
        if state["state"] in ("failed", "cancelled", "needs_review"):
            raise SystemExit(f"the CT fetch ended {state['state']}: {state['message']}")
        time.sleep(POLL_SECONDS)


def queue_backlog(settings: Settings, store: jobs.JobStore, backlog, round_number: int) -> None:
    for patient_id, _ in backlog:
        # Another range each round, so each is a new job rather than the finished one.
        request = FetchRequest(pacs_patient_id=patient_id, date_from=f"19{round_number:02d}-01-01")
        target = FetchTarget.resolve(settings, request)
        store.submit(
            FETCH_KIND,
            target.to_params(),
            dedupe_key=target.dedupe_key(),
            priority=jobs.BACKGROUND,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ct-slices", type=int, default=240)
    parser.add_argument("--backlog", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        catalog = demo_studies.generate(work / "demo", ct_slices=args.ct_slices)
        ct = catalog.study("dubois-ext-cbct-2023")
        megabytes = sum(p.stat().st_size for p in ct.files) / 1e6
        backlog = backlog_studies(work, catalog, args.backlog)
        scp_port = free_port()
        with OrthancServer(
            work / "orthanc", modalities={"gateway": (GATEWAY_AET, "127.0.0.1", scp_port)}
        ) as orthanc:
            orthanc.upload([*ct.files, *(f for _, files in backlog for f in files)])
            settings = Settings(
                ae_title=GATEWAY_AET,
                dicom_port=scp_port,
                dicom_bind="127.0.0.1",
                data_dir=work / "gateway",
                workers=2,
                storage_min_free_gb=0,
                pacs=[
                    PacsSettings(
                        name="bench",
                        ae_title=orthanc.ae_title,
                        host="127.0.0.1",
                        port=orthanc.dicom_port,
                    )
                ],
            )
            engine = open_database(settings.database_url)
            _, key = KeyStore(engine).create("bench", "service")
            store = jobs.JobStore(engine)
            serve = ServeProcess(settings, work)
            serve.start()
            api = httpx.Client(
                base_url=f"http://127.0.0.1:{serve.http_port}",
                headers={"Authorization": f"Bearer {key}"},
                timeout=60,
            )
            idle, busy, waiting = [], [], []
            try:
                fetch_ct(api, ct, settings.studies_dir)  # warm-up: caches, first association
                for round_number in range(args.repeat):
                    idle.append(fetch_ct(api, ct, settings.studies_dir))
                    queue_backlog(settings, store, backlog, round_number)
                    busy.append(fetch_ct(api, ct, settings.studies_dir))
                    waiting.append(
                        sum(
                            1
                            for j in store.list(
                                kind=FETCH_KIND, state=jobs.ACTIVE_STATES, limit=500
                            )
                            if j.priority == jobs.BACKGROUND
                        )
                    )
                    while store.list(kind=FETCH_KIND, state=jobs.ACTIVE_STATES, limit=1):
                        time.sleep(0.2)  # let the backlog drain before the next idle run
            finally:
                api.close()
                serve.stop()
                engine.dispose()
    idle_s, busy_s = statistics.median(idle), statistics.median(busy)
    ratio = busy_s / idle_s
    rounds = ", ".join(f"{x:.2f}" for x in idle)
    print(f"CT of {len(ct.files)} slices ({megabytes:.0f} MB)")
    print(f"idle gateway: {idle_s:.2f} s (rounds: {rounds})")
    print(
        f"with {args.backlog} prefetch jobs queued: {busy_s:.2f} s "
        f"(rounds: {', '.join(f'{x:.2f}' for x in busy)}; background jobs still waiting when "
        f"it finished: {', '.join(map(str, waiting))})"
    )
    print(f"ratio {ratio:.2f} ({'meets' if ratio <= 1.3 else 'MISSES'} <= 1.3)")


if __name__ == "__main__":
    main()
