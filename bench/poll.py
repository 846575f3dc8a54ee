"""Polling throughput of GET /api/v1/jobs/{id}: the request a client repeats while it waits.

Starts the API in a subprocess (one uvicorn process, uvloop + httptools when installed, the
gateway's access log on at INFO into a file, as `serve` runs it), creates an API key and a
queued job, then drives the job's URL with wrk: 100 connections for DURATION seconds, once
with If-None-Match (304s: the polling path) and once without (200s with the full body).

    python bench/poll.py [--duration 10] [--connections 100] [--threads 1]

Needs wrk (Debian: apt-get install -y wrk); a Python load generator would be the bottleneck.
Target: >= 3,000 req/s and p99 < 50 ms on the 304 path.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "orthanc-test")]

from orthanc_server import free_port  # noqa: E402

SERVER = """
import logging, sys
import uvicorn
from gateway.app import create_app
from gateway.service import Gateway
from gateway.core.settings import Settings

logging.basicConfig(filename=sys.argv[2], level=logging.INFO)
settings = Settings()
loop = "uvloop" if sys.argv[3] == "1" else "asyncio"
http = "httptools" if sys.argv[4] == "1" else "h11"
uvicorn.run(create_app(Gateway(settings)), host="127.0.0.1", port=int(sys.argv[1]),
            access_log=False, log_level="warning", loop=loop, http=http)
"""


def installed(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def prepare(data_dir: Path) -> tuple[dict[str, str], str, str]:
    """Environment for the server, an API key, and a queued job's id."""
    env = {
        **os.environ,
        "PACS_GATEWAY_DATA_DIR": str(data_dir),
        "PACS_GATEWAY_DICOM_PORT": str(free_port()),
        "PACS_GATEWAY_DICOM_BIND": "127.0.0.1",
        "PACS_GATEWAY_WORKERS": "0",  # the job stays queued: its ETag never changes
        "PACS_GATEWAY_PACS": json.dumps(
            [{"name": "bench", "ae_title": "NOBODY", "host": "127.0.0.1", "port": free_port()}]
        ),
        "PYTHONPATH": str(ROOT),
    }
    os.environ.update({k: v for k, v in env.items() if k.startswith("PACS_GATEWAY_")})
    from gateway.core.database import open_database
    from gateway.core.keys import KeyStore
    from gateway.core.settings import Settings

    settings = Settings()
    assert settings.database_url is not None
    engine = open_database(settings.database_url)
    _, plaintext = KeyStore(engine).create("bench", "service")
    engine.dispose()
    return env, plaintext, ""


def start_server(env: dict[str, str], port: int, log_file: Path) -> subprocess.Popen[bytes]:
    args = [
        sys.executable,
        "-c",
        SERVER,
        str(port),
        str(log_file),
        "1" if installed("uvloop") else "0",
        "1" if installed("httptools") else "0",
    ]
    return subprocess.Popen(args, env=env, cwd=ROOT)


def wait_ready(base: str, server: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)  # startup poll only; nothing is measured here
    raise SystemExit("the server did not come up")


def wrk(
    url: str, headers: dict[str, str], args: argparse.Namespace, script: Path | None = None
) -> dict[str, float]:
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "--latency",
        "--timeout",
        "5s",
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1]),  # type: ignore[index]
        "p50": _ms(re.search(r"50%\s+([\d.]+\w+)", output)[1]),  # type: ignore[index]
        "p99": _ms(re.search(r"99%\s+([\d.]+\w+)", output)[1]),  # type: ignore[index]
        "errors": float(m[1])
        if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", output))
        else 0.0,
        "socket_errors": 1.0 if "Socket errors" in output else 0.0,
    }


def pacing_script(directory: Path, connections: int, rate: int) -> Path:
    """A wrk script that makes each connection wait between requests, like a real poller,
    so the offered load is about `rate` per second and latency is measured below saturation
    (wrk alone saturates the server, and then latency is just queueing: connections/rate)."""
    script = directory / "pace.lua"
    script.write_text(f"function delay()\n  return {connections * 1000 / rate:.3f}\nend\n")
    return script


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--rate", type=int, default=3000, help="paced run: offered req/s")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")

    with tempfile.TemporaryDirectory(prefix="pgw-bench-") as tmp:
        data_dir = Path(tmp)
        env, key, _ = prepare(data_dir)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(env, port, data_dir / "gateway.log")
        try:
            wait_ready(base, server)
            auth = {"Authorization": f"Bearer {key}"}
            submitted = httpx.post(
                f"{base}/api/v1/fetches", json={"pacs_patient_id": "BENCH-1"}, headers=auth
            )
            submitted.raise_for_status()
            url = base + submitted.headers["location"]
            etag = submitted.headers["etag"]
            assert httpx.get(url, headers={**auth, "If-None-Match": etag}).status_code == 304

            print(
                f"GET /api/v1/jobs/{{id}}: {args.connections} connections, {args.duration} s, "
                f"wrk -t{args.threads}; 1 uvicorn process, loop="
                f"{'uvloop' if installed('uvloop') else 'asyncio'}, http="
                f"{'httptools' if installed('httptools') else 'h11'}, {os.cpu_count()} CPUs"
            )
            conditional = {**auth, "If-None-Match": etag}
            pace = pacing_script(data_dir, args.connections, args.rate)
            for label, headers, script in (
                ("304, saturated", conditional, None),
                ("200, saturated", auth, None),
                (f"304, paced ~{args.rate}/s", conditional, pace),
                (f"200, paced ~{args.rate}/s", auth, pace),
            ):
                r = wrk(url, headers, args, script)
                print(
                    f"  {label:22} {r['rps']:8.0f} req/s   p50 {r['p50']:6.2f} ms   "
                    f"p99 {r['p99']:6.2f} ms   errors {r['errors']:.0f}"
                    + ("   (socket errors)" if r["socket_errors"] else "")
                )
            lines = (data_dir / "gateway.log").read_text().splitlines()
            print(f"  access log lines written: {len(lines)}")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
