"""Retention at scale: choosing what to remove, and job reads, with a big index and history.

    python bench/retention.py [--studies 100000] [--images-per-study 50] [--jobs 1000000]
                              [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]

Fills a fresh gateway database (SQLite in a temp dir, and PostgreSQL when --postgres names a
server: a throwaway database is created there) with that many studies, instances and finished
fetch jobs, then times, against a reference of 1,000 studies and 1,000 jobs in the same run:
- choosing the first batch of studies to remove (least recently used, pins excluded), from
  the index by last use, never by walking the store;
- a job poll (`JobStore.get`) and a page of `GET /api/v1/jobs` (`JobStore.list`), p50 / p99
  over 1,000 reads each.
Targets: choosing < 1 s; job reads p99 < 50 ms. Prints the figures and the ratio to the
reference.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.core.database import open_database
from gateway.core.models import instance, study
from gateway.index.study_index import StudyIndex
from gateway.review import AuditLog
from gateway.storage.retention import Limits, Retention
from jobs import JobStore
from jobs.models import JobRecord
from pacs.store import StudyStore

BATCH = 20_000


def fill(engine: sa.Engine, studies: int, images: int, jobs_count: int) -> None:
    now = datetime.now(UTC)
    rng = random.Random(1)
    with engine.begin() as conn:
        for start in range(0, studies, BATCH):
            rows, inst = [], []
            for n in range(start, min(start + BATCH, studies)):
                uid = f"1.2.826.0.1.3680043.10.{n}"
                rows.append(
                    {
                        "study_uid": uid,
                        "pacs_name": "main",
                        "pacs_patient_id": f"P{n % 20_000}",
                        "study_date": None,
                        "description": "bench",
                        "modalities": "CT",
                        "instance_count": images,
                        "bytes": images * 500_000,
                        "job_id": "bench",
                        "fetched_at": now,
                        "last_used_at": now - timedelta(minutes=rng.randint(20, 500_000)),
                        "keep": n % 97 == 0,
                        "pinned_until": now + timedelta(days=1) if n % 89 == 0 else None,
                    }
                )
                inst.extend(
                    {
                        "sop_instance_uid": f"{uid}.{i}",
                        "study_uid": uid,
                        "series_uid": f"{uid}.1",
                        "sop_class_uid": "1.2.840.10008.5.1.4.1.1.2",
                        "instance_number": i,
                        "size": 500_000,
                        "path": f"{uid}/{uid}.1/{uid}.{i}.dcm",
                    }
                    for i in range(images)
                )
            conn.execute(study.insert(), rows)
            for chunk in range(0, len(inst), BATCH * 5):
                conn.execute(instance.insert(), inst[chunk : chunk + BATCH * 5])
    with engine.begin() as conn:
        for start in range(0, jobs_count, BATCH):
            conn.execute(
                sa.insert(JobRecord),
                [
                    {
                        "id": str(uuid.UUID(int=rng.getrandbits(128))),
                        "kind": "fetch",
                        "state": "succeeded",
                        "params": {"pacs_patient_id": f"P{n % 20_000}"},
                        "dedupe_key": None,
                        "checkpoint": {},
                        "message": "Fetched 1 study, 50 images.",
                        "progress": {"bytes": 25_000_000},
                        "attempts": 1,
                        "cancel_requested": False,
                        "version": 3,
                        "created_at": now - timedelta(seconds=jobs_count - n),
                        "updated_at": now,
                        "started_at": now,
                        "finished_at": now,
                    }
                    for n in range(start, min(start + BATCH, jobs_count))
                ],
            )


def measure(engine: sa.Engine, root: Path) -> dict[str, float]:
    index = StudyIndex(engine, root)
    retention = Retention(
        Limits(max_bytes=1, min_free_bytes=0, keep_unused=timedelta(days=90), evict_pushed=False),
        index,
        StudyStore(root),
        AuditLog(engine),
        active_studies=lambda: [f"1.2.826.0.1.3680043.10.{n}" for n in range(0, 500, 5)],
    )
    started = time.perf_counter()
    first = next(iter(retention._candidates(frozenset())))
    choose = time.perf_counter() - started
    assert first is not None
    store = JobStore(engine)
    with engine.connect() as conn:
        ids = conn.scalars(sa.select(JobRecord.id).limit(1000)).all()
    polls, pages = [], []
    for job_id in ids:
        t = time.perf_counter()
        store.get(job_id)
        polls.append(time.perf_counter() - t)
    for _ in range(len(ids)):
        t = time.perf_counter()
        store.list(kind="fetch", limit=50)
        pages.append(time.perf_counter() - t)
    return {
        "choose_s": choose,
        "poll_p50_ms": statistics.median(polls) * 1000,
        "poll_p99_ms": _p99(polls) * 1000,
        "list_p50_ms": statistics.median(pages) * 1000,
        "list_p99_ms": _p99(pages) * 1000,
    }


def _p99(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.99) - 1)]


def run(label: str, url: str, root: Path, studies: int, images: int, jobs_count: int) -> None:
    engine = open_database(url)
    started = time.perf_counter()
    fill(engine, studies, images, jobs_count)
    filled = time.perf_counter() - started
    figures = measure(engine, root)
    engine.dispose()
    print(
        f"{label}: {studies:,} studies, {studies * images:,} instances, {jobs_count:,} jobs "
        f"(filled in {filled:.0f} s): choose {figures['choose_s'] * 1000:.1f} ms; "
        f"poll p50 {figures['poll_p50_ms']:.2f} / p99 {figures['poll_p99_ms']:.2f} ms; "
        f"list p50 {figures['list_p50_ms']:.2f} / p99 {figures['list_p99_ms']:.2f} ms"
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--images-per-study", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--postgres", help="a PostgreSQL server URL to bench as well")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "studies"
        targets = [("sqlite", lambda name: f"sqlite:///{Path(tmp) / name}.db")]
        created: list[str] = []
        admin = (
            sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT") if args.postgres else None
        )
        if admin is not None:

            def pg(name: str) -> str:
                db = f"bench_{name}_{uuid.uuid4().hex[:8]}"
                with admin.connect() as conn:
                    conn.exec_driver_sql(f'CREATE DATABASE "{db}"')
                created.append(db)
                return sa.make_url(args.postgres).set(database=db).render_as_string(False)

            targets.append(("postgresql", pg))
        for label, url_for in targets:
            reference = run(f"{label} reference", url_for("reference"), root, 1000, 5, 1000)
            full = run(
                f"{label} full",
                url_for("full"),
                root,
                args.studies,
                args.images_per_study,
                args.jobs,
            )
            print(
                f"{label}: choose {full['choose_s'] / max(reference['choose_s'], 1e-9):.1f}x the "
                f"reference ({'meets' if full['choose_s'] < 1 else 'MISSES'} < 1 s); poll p99 "
                f"{'meets' if full['poll_p99_ms'] < 50 else 'MISSES'} < 50 ms; list p99 "
                f"{'meets' if full['list_p99_ms'] < 50 else 'MISSES'} < 50 ms"
            )
        if admin is not None:
            with admin.connect() as conn:
                for db in created:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


if __name__ == "__main__":
    main()
