"""Bulk upload benchmark: N generated patients in a SQLite R4 uploaded to a local fake Flynotes.

    python bench/bulk_upload.py [--patients 100000] [--batch-size 1000] [--tracemalloc]

Prints wall time, patients/s and peak memory. Peak RSS (ru_maxrss) covers the whole process,
so the database is generated first and the RSS before and after the upload are both shown;
--tracemalloc adds the peak of Python allocations during the upload alone (slower).
The fake server runs in this process and keeps only counts, not bodies.
Targets: flat memory (< 200 MB) and >= 5,000 patients/s.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from r4.database import create_r4_engine
from r4.flynotes import FlynotesClient
from r4.sync import bulk_upload_patients
from testkit.fake_flynotes import FakeFlynotes
from testkit.sample_data import generate_practice


def max_rss_mb() -> float:
    # Linux reports kilobytes, macOS bytes.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        engine = create_r4_engine(f"sqlite:///{Path(tmp) / 'sys2000.db'}")
        started = time.perf_counter()
        summary = generate_practice(engine, args.patients, seed=1, history_per_patient=0)
        print(
            f"generated {summary.patients} patients ({summary.active_patients} active) "
            f"in {time.perf_counter() - started:.1f} s; max RSS so far {max_rss_mb():.0f} MB"
        )

        with (
            FakeFlynotes("bench", keep_bodies=False) as fake,
            FlynotesClient(fake.url, "bench", timeout=60) as client,
        ):
            if args.tracemalloc:
                tracemalloc.start()
            rss_before = max_rss_mb()
            started = time.perf_counter()
            result = bulk_upload_patients(engine, client, batch_size=args.batch_size)
            elapsed = time.perf_counter() - started
            traced_peak = tracemalloc.get_traced_memory()[1] if args.tracemalloc else None
            received = fake.state.uploaded_patient_count
        engine.dispose()

    assert received == result.patients == summary.patients, "patients went missing"
    print(
        f"uploaded {result.patients} patients in {result.batches} batches of "
        f"{args.batch_size} in {elapsed:.2f} s: {result.patients / elapsed:,.0f} patients/s"
    )
    print(f"max RSS: {rss_before:.0f} MB before upload, {max_rss_mb():.0f} MB after")
    if traced_peak is not None:
        print(f"tracemalloc peak during upload: {traced_peak / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
