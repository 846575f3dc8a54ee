"""The README's run command: a real Orthanc with demo studies, and the gateway fetching from it.

Starts Debian's Orthanc on free local ports with synthetic demo studies (no real people),
writes a gateway configuration pointing at it, starts `pacs-gateway serve`, asks it over HTTP
to fetch one patient's studies, and prints the job's status line as it changes until it is
done. Then it keeps both servers up, prints the API key and the pages to open, and waits:
Ctrl+C, SIGTERM or SIGHUP stops everything it started (`--once` stops right after the fetch).
Everything lives under ./var/demo.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import demo_studies
import httpx
from orthanc_server import OrthancServer, free_port, wait_until

DEMO_DIR = Path("var/demo").resolve()
_PR_SET_PDEATHSIG = 1
GATEWAY_AET = "PACSGATEWAY"
# The outside radiology provider's id for the patient with a CBCT and an MR study.
DEMO_PATIENT_ID = demo_studies.SAME_PERSON_IDS[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patient-id", default=DEMO_PATIENT_ID)
    parser.add_argument("--method", choices=["move", "get"], default="move")
    parser.add_argument(
        "--once", action="store_true", help="stop Orthanc and the gateway after the fetch"
    )
    args = parser.parse_args()
    # SIGTERM and SIGHUP (a closed terminal) unwind like Ctrl+C, so every `with` below stops
    # what it started instead of leaving `serve` holding its ports.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    try:
        return run(args)
    except KeyboardInterrupt:
        say("Stopped.")
        return 130


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)
    say("Generating synthetic demo studies…")
    catalog = demo_studies.generate(DEMO_DIR / "generated")
    scp_port, http_port = free_port(), free_port()
    with OrthancServer(
        DEMO_DIR / "orthanc",
        modalities={"gateway": (GATEWAY_AET, "127.0.0.1", scp_port)},
        # The tests keep Orthanc's own web pages off; a newcomer looking at the demo wants them.
        config_overrides={"OrthancExplorerEnabled": True},
    ) as orthanc:
        say(f"Orthanc (the demo PACS) is up: DICOM port {orthanc.dicom_port}, web {orthanc.url}")
        demo_studies.store(catalog.files, "127.0.0.1", orthanc.dicom_port, orthanc.ae_title)
        say(f"Loaded {catalog.instance_count} demo images into Orthanc.")
        config = write_config(orthanc, scp_port, http_port, args.method)
        # An admin key opens every page: the clinician's job page and the staff review queue.
        key = (
            gateway("keys", "create", "--config", str(config), "--name", "demo", "--role", "admin")
            .strip()
            .split()[-1]
        )
        with serve(config, http_port) as api:
            job_id, code = fetch(api, key, args.patient_id)
            if args.once:
                return code
            say("")
            say("Everything is running. Open these in a browser (log in with the API key):")
            say(f"  API key:             {key}")
            say(f"  The clinician's page: {api}/ui/jobs/{job_id}")
            say(f"  The review queue:    {api}/ui/review")
            say(f"  The API (OpenAPI):   {api}/docs")
            say(f"  The demo PACS:       {orthanc.url}/app/explorer.html")
            say("Ctrl+C stops everything.")
            threading.Event().wait()
    return code


def fetch(api: str, key: str, patient_id: str) -> tuple[str, int]:
    """Submit the fetch and follow it; the job id and 0 if it succeeded, else 1."""
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=api, headers=headers, timeout=10) as client:
        say(f'$ POST {api}/api/v1/fetches  {{"pacs_patient_id": "{patient_id}"}}')
        answer = client.post("/api/v1/fetches", json={"pacs_patient_id": patient_id})
        answer.raise_for_status()
        location = answer.headers["Location"]
        say(f"Job accepted: {location}")
        job_id = answer.json()["id"]
        etag, last = "", ""
        while True:
            poll = client.get(location, headers={"If-None-Match": etag} if etag else {})
            if poll.status_code == 200:
                job, etag = poll.json(), poll.headers.get("ETag", "")
                if job["message"] != last:
                    last = job["message"]
                    say(f"  [{job['state']}] {last}")
                if job["state"] in ("succeeded", "failed", "cancelled", "needs_review"):
                    return job_id, 0 if job["state"] == "succeeded" else 1
            time.sleep(0.5)  # a person is watching: update often, not at Retry-After pace


@contextlib.contextmanager
def serve(config: Path, http_port: int):  # noqa: ANN201 - a context manager of the API URL
    log = (DEMO_DIR / "gateway.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        # If this script is killed outright, the kernel tells serve to shut down gracefully.
        preexec_fn=_terminate_with_parent,
    )
    api = f"http://127.0.0.1:{http_port}"
    try:
        if not wait_until(lambda: _healthy(api) or process.poll() is not None, 60):
            raise SystemExit("the gateway did not start; see var/demo/gateway.log")
        if process.poll() is not None:
            raise SystemExit("the gateway stopped at start; see var/demo/gateway.log")
        say(f"pacs-gateway serve is up: {api} (log: var/demo/gateway.log)")
        yield api
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def _terminate_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _healthy(api: str) -> bool:
    try:
        return httpx.get(f"{api}/health", timeout=1).is_success
    except httpx.HTTPError:
        return False


def gateway(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], check=True, capture_output=True, text=True
    ).stdout


def write_config(orthanc: OrthancServer, scp_port: int, http_port: int, method: str) -> Path:
    config = DEMO_DIR / "gateway.toml"
    config.write_text(
        f'ae_title = "{GATEWAY_AET}"\n'
        f"dicom_port = {scp_port}\n"
        'dicom_bind = "127.0.0.1"\n'
        f"http_port = {http_port}\n"
        f'data_dir = "{DEMO_DIR / "gateway"}"\n\n'
        "[[pacs]]\n"
        'name = "demo-orthanc"\n'
        f'ae_title = "{orthanc.ae_title}"\n'
        'host = "127.0.0.1"\n'
        f"port = {orthanc.dicom_port}\n"
        f'retrieve_method = "{method}"\n',
        encoding="utf-8",
    )
    return config


def say(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
