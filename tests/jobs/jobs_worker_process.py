"""A worker process for the concurrency test: runs a WorkerPool until `expected` jobs are done.

Usage: python jobs_worker_process.py DATABASE_URL WORKER_ID_PREFIX EXPECTED
Prints "ready" once its pool is polling, so the test can submit work only then.
"""

from __future__ import annotations

import sys
from pathlib import Path

import sqlalchemy as sa

from jobs import JobContext, JobState, JobStore, WorkerPool, create_engine

# Run as a script: the shared test helpers are not on its path as they are under pytest.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "orthanc-test"))
from orthanc_server import wait_until

runs = sa.Table(
    "jobs_test_run",
    sa.MetaData(),
    sa.Column("job_id", sa.String(36), nullable=False),
    sa.Column("worker_id", sa.String(255), nullable=False),
)
KIND = "bulk"


def main(url: str, prefix: str, expected: int) -> int:
    engine = create_engine(url)
    store = JobStore(engine)

    def handler(ctx: JobContext) -> None:
        with engine.begin() as conn:
            conn.execute(runs.insert().values(job_id=ctx.id, worker_id=ctx.worker_id))
        ctx.report("Recorded", force=True, runs=1)

    def succeeded() -> int:
        with engine.connect() as conn:
            return conn.scalar(
                sa.text("SELECT count(*) FROM job WHERE kind = :k AND state = :s"),
                {"k": KIND, "s": JobState.SUCCEEDED.value},
            )

    pool = WorkerPool(
        store,
        {KIND: handler},
        workers=3,
        lease_seconds=5,
        poll_interval=0.02,
        worker_id_prefix=prefix,
    )
    pool.start()
    print("ready", flush=True)
    try:
        if not wait_until(lambda: succeeded() >= expected, 60):
            print("timed out", flush=True)
            return 1
    finally:
        pool.stop(timeout=5)
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
