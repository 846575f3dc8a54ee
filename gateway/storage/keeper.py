"""The thread that keeps the store and the job history within their bounds while the
gateway runs: at start, then every `every` seconds (fetches check again before each study).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

import jobs
from gateway.core.models import idempotency_key
from gateway.core.periodic import Periodic
from gateway.storage.retention import Retention

log = logging.getLogger(__name__)

SWEEP_SECONDS = 600.0
# SQLite's VACUUM locks the database while it runs: only after a large deletion.
COMPACT_AFTER = 1000


class Keeper:
    def __init__(
        self,
        retention: Retention,
        job_store: jobs.JobStore,
        engine: sa.Engine,
        keep_jobs: timedelta,
        *,
        every: float = SWEEP_SECONDS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.retention = retention
        self.job_store = job_store
        self.engine = engine
        self.keep_jobs = keep_jobs
        self._clock = clock
        self._thread = Periodic("storage-keeper", every, self.run_once)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._thread.stop(timeout)

    def run_once(self) -> tuple[int, int]:
        """(studies removed, jobs deleted)."""
        removed = self.retention.sweep()
        cutoff = self._clock() - self.keep_jobs
        pruned = self.job_store.prune(cutoff)
        # An Idempotency-Key names a job: it is forgotten with the jobs of its time.
        with jobs.write_transaction(self.engine) as conn:
            conn.execute(idempotency_key.delete().where(idempotency_key.c.created_at < cutoff))
        if pruned:
            log.info("Deleted %d finished jobs older than %d days", pruned, self.keep_jobs.days)
        if pruned >= COMPACT_AFTER:
            _compact(self.engine)
        return removed, pruned


def _compact(engine: sa.Engine) -> None:
    """SQLite gives deleted pages back to the file only when asked; PostgreSQL's autovacuum
    does its own."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.exec_driver_sql("VACUUM")
