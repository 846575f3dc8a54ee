"""Preview rendering and cached lookups on demo data, and print the figures.

    python bench/preview.py [--ct-slices 240] [--intraoral 100] [--lookups 20000]

Cases:
  CT slice         every slice of the demo CBCT (512x512, signed 16 bits, rescale and
                   window) rendered to a PNG preview, not cached (target: mean < 30 ms)
  intraoral        generated 1000x1300 12-bit intraoral images, same
  cache miss       PreviewCache.get_or_render on an empty cache: one decode, preview and
                   thumbnail PNGs written
  cache hit        get_or_render once the files exist: what an API request costs here
  HTTP             cached preview requests (GET .../preview.png with an API key) against one
                   `pacs-gateway serve` process, driven by wrk (target: >= 1,000 req/s)
"Not cached" means our cache: the DICOM files were just written and sit in the OS page
cache, so the figures leave out disk reads.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "orthanc-test")]

import demo_studies  # noqa: E402
import numpy as np  # noqa: E402
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import (  # noqa: E402
    DigitalIntraOralXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
)

from pacs.preview import PreviewCache, read_display_pixels, render_preview  # noqa: E402

CT_TARGET_MS = 30.0
HTTP_TARGET_RPS = 1_000.0


def timed(paths: Sequence[Path], action: Callable[[Path], object]) -> list[float]:
    """Milliseconds per call of `action`, one call per path."""
    times = []
    for path in paths:
        started = time.perf_counter()
        action(path)
        times.append((time.perf_counter() - started) * 1000)
    return times


def report(label: str, times_ms: Sequence[float]) -> float:
    mean = statistics.fmean(times_ms)
    p95 = statistics.quantiles(times_ms, n=20)[-1] if len(times_ms) > 1 else times_ms[0]
    print(f"  {label:34} n={len(times_ms):4}  mean {mean:7.2f} ms  p95 {p95:7.2f} ms")
    return mean


def write_intraorals(out_dir: Path, count: int) -> list[Path]:
    rng = np.random.default_rng(7)
    paths = []
    for index in range(count):
        ds = Dataset()
        ds.SOPClassUID = DigitalIntraOralXRayImageStorageForPresentation
        ds.SOPInstanceUID = demo_studies.uid("bench-io", index)
        ds.Modality = "IO"
        ds.PatientName, ds.PatientID = "Bench^Invented", "BENCH-1"
        image = demo_studies.intraoral(rng, index)
        ds.Rows, ds.Columns = image.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.WindowCenter, ds.WindowWidth = 2048, 4096
        ds.PixelData = image.tobytes()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        path = out_dir / f"io-{index:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def bench_renders(label: str, paths: Sequence[Path]) -> float:
    print(f"{label} ({len(paths)} images)")
    render_preview(paths[0], max_size=1024)  # imports and plugin discovery, once
    report("decode + display pixels", timed(paths, read_display_pixels))
    return report(
        "preview PNG (<= 1024 px)", timed(paths, lambda p: render_preview(p, max_size=1024))
    )


def bench_cache(cache_root: Path, keyed: Sequence[tuple[str, str, Path]], lookups: int) -> None:
    cache = PreviewCache(cache_root)
    print(f"PreviewCache ({len(keyed)} series)")
    report(
        "cache miss (decode, 2 PNGs)",
        timed(keyed, lambda k: cache.get_or_render(k[0], k[1], k[2], "preview")),  # type: ignore[arg-type]
    )
    keys = [keyed[i % len(keyed)] for i in range(lookups)]
    kinds = ("preview", "thumbnail")
    started = time.perf_counter()
    for i, (study, series, path) in enumerate(keys):
        cache.get_or_render(study, series, path, kinds[i % 2])
    per_lookup_us = (time.perf_counter() - started) / lookups * 1e6
    print(
        f"  {'cache hit (get_or_render)':34} n={lookups:5}  {per_lookup_us:6.1f} µs per lookup"
        f"  ({1e6 / per_lookup_us:,.0f} per second, one thread)"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ct-slices", type=int, default=240)
    parser.add_argument("--intraoral", type=int, default=100)
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--http-seconds", type=int, default=10, help="0 skips the HTTP part")
    parser.add_argument("--http-connections", type=int, default=32)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-preview-") as temp:
        work = Path(temp)
        started = time.perf_counter()
        catalog = demo_studies.generate(work / "demo", ct_slices=args.ct_slices)
        (work / "io").mkdir()
        intraorals = write_intraorals(work / "io", args.intraoral)
        print(f"data written in {time.perf_counter() - started:.1f} s\n")

        ct = catalog.study("dubois-ext-cbct-2023").series[0]
        ct_mean = bench_renders("CT slice 512x512 int16", ct.files)
        verdict = "meets" if ct_mean < CT_TARGET_MS else "MISSES"
        print(f"  -> {verdict} the {CT_TARGET_MS:.0f} ms target for a CT slice\n")
        bench_renders("intraoral 1000x1300 12-bit", intraorals)
        print()

        # One series per image, so every image is one miss and then one cached file.
        keyed = [
            (demo_studies.uid("bench-study", i), demo_studies.uid("bench-series", i), path)
            for i, path in enumerate([*ct.files, *intraorals])
        ]
        bench_cache(work / "previews", keyed, args.lookups)
        if args.http_seconds > 0:
            print()
            bench_http(work / "http", ct, args.http_seconds, args.http_connections)


def bench_http(work: Path, series: demo_studies.DemoSeries, seconds: int, connections: int) -> None:
    """wrk against one serve process: cached preview.png of one CT series, with a key."""
    from gateway.core.keys import KeyStore
    from gateway.core.settings import Settings
    from gateway.service import Gateway
    from pacs.models import Instance, PacsPatient, Study

    if shutil.which("wrk") is None:
        print("HTTP: wrk is not installed (apt-get install -y wrk); skipped")
        return
    port = _free_port()
    settings = Settings(
        data_dir=work, http_port=port, dicom_port=_free_port(), dicom_bind="127.0.0.1", workers=0
    )
    study_uid = demo_studies.uid("bench-http-study")
    gateway = Gateway(settings)
    instances = []
    for number, item in enumerate(series.instances, 1):
        target = gateway.node.store.path_for(study_uid, series.series_uid, item.sop_instance_uid)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(item.path, target)
        instances.append(
            Instance(
                study_uid, series.series_uid, item.sop_instance_uid, series.sop_class_uid, number
            )
        )
    study = Study(study_uid=study_uid, patient=PacsPatient(patient_id="BENCH-1"))
    gateway.index.record_study("bench", study, instances, {}, job_id=None)
    _, key = KeyStore(gateway.engine).create("bench", "clinician")
    gateway.engine.dispose()

    config = work / "serve.toml"
    config.write_text(
        "\n".join(
            f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v}"
            for k, v in {
                "data_dir": str(work),
                "http_port": port,
                "dicom_port": settings.dicom_port,
                "dicom_bind": "127.0.0.1",
                "workers": 0,
            }.items()
        )
        + "\n"
    )
    log = (work / "serve.log").open("wb")
    serve = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--config", str(config)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    url = (
        f"http://127.0.0.1:{port}/api/v1/studies/{study_uid}/series/{series.series_uid}/preview.png"
    )
    auth = f"Authorization: Bearer {key}"
    try:
        _wait_for(f"http://127.0.0.1:{port}/health")
        # The first request renders; every one wrk sends is then a cache hit.
        subprocess.run(["curl", "-sf", "-o", "/dev/null", "-H", auth, url], check=True)
        out = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-H", auth, url],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        serve.terminate()
        serve.wait(30)
        log.close()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    p99 = re.search(r"99%\s+(\S+)", out)[1]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    print(f"HTTP cached preview.png, one serve process, {connections} connections, {seconds} s")
    print(f"  {rps:,.0f} req/s  p99 {p99}  non-2xx {non_2xx[1] if non_2xx else 0}")
    verdict = "meets" if rps >= HTTP_TARGET_RPS and not non_2xx else "MISSES"
    print(f"  -> {verdict} the {HTTP_TARGET_RPS:,.0f} req/s target")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(["curl", "-sf", "-o", "/dev/null", url]).returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"serve did not answer {url} within {timeout:.0f} s")


if __name__ == "__main__":
    main()
