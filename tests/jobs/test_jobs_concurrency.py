"""Many workers, one database: every job runs exactly once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from jobs_helpers import wait_for
from jobs_worker_process import KIND, runs

from jobs import JobContext, JobState, JobStore, WorkerPool, create_engine, upgrade

N_JOBS = 200
WORKER_SCRIPT = Path(__file__).with_name("jobs_worker_process.py")


def _prepare(engine: sa.Engine) -> None:
    upgrade(engine)
    runs.metadata.create_all(engine)


def _succeeded(store: JobStore) -> int:
    return len(store.list(kind=KIND, state=JobState.SUCCEEDED, limit=N_JOBS + 1))


def _assert_each_ran_once(engine: sa.Engine, store: JobStore, prefixes: list[str]) -> None:
    with engine.connect() as conn:
        per_job = conn.execute(
            sa.select(runs.c.job_id, sa.func.count()).group_by(runs.c.job_id)
        ).all()
        workers = set(conn.scalars(sa.select(runs.c.worker_id).distinct()))
    assert len(per_job) == N_JOBS
    assert {count for _, count in per_job} == {1}
    assert _succeeded(store) == N_JOBS
    for prefix in prefixes:  # both really competed
        assert any(w.startswith(prefix) for w in workers), (prefix, workers)


def test_two_pools_in_one_process(db_url):
    engines = [create_engine(db_url) for _ in range(2)]
    _prepare(engines[0])
    stores = [JobStore(e) for e in engines]

    def handler(ctx: JobContext) -> None:
        with engines[0].begin() as conn:
            conn.execute(runs.insert().values(job_id=ctx.id, worker_id=ctx.worker_id))
        ctx.report("Recorded", runs=1)

    pools = [
        WorkerPool(
            s,
            {KIND: handler},
            workers=4,
            lease_seconds=5,
            poll_interval=0.02,
            worker_id_prefix=prefix,
        )
        for s, prefix in zip(stores, ["a", "b"], strict=True)
    ]
    for pool in pools:
        pool.start()
    try:
        for i in range(N_JOBS):
            stores[i % 2].submit(KIND, {"i": i})
        wait_for(lambda: _succeeded(stores[0]) == N_JOBS, timeout=40, what="all jobs done")
    finally:
        for pool in pools:
            pool.stop(timeout=5)
    _assert_each_ran_once(engines[0], stores[0], ["a-", "b-"])
    for e in engines:
        e.dispose()


def test_two_os_processes(db_url, engine):
    _prepare(engine)
    store = JobStore(engine)
    prefixes = ["proc1", "proc2"]
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER_SCRIPT), db_url, prefix, str(N_JOBS)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for prefix in prefixes
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for i in range(N_JOBS):
            store.submit(KIND, {"i": i})
        for proc in procs:
            assert proc.wait(timeout=60) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
    _assert_each_ran_once(engine, store, [p + "-" for p in prefixes])
