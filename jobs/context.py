"""JobContext: what a handler gets to read its job, save its steps and report progress."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from jobs.errors import JobCancelled, LeaseLost
from jobs.job import Job
from jobs.store import JobStore


@dataclass
class JobSignals:
    """Set by the pool's threads, read by the handler through JobContext.cancelled."""

    stopping: threading.Event
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    lease_lost: threading.Event = field(default_factory=threading.Event)

    def any(self) -> bool:
        return self.stopping.is_set() or self.cancel_requested.is_set() or self.lease_lost.is_set()


class JobContext:
    """Handed to a handler for one attempt of one job.

    Safe to call from several threads (a Storage SCP reporting each received file from its
    own threads, say). Writes are throttled to one per `report_interval` seconds; what is held
    back goes out with the next write, the pool's next tick or the end of the attempt."""

    def __init__(
        self,
        store: JobStore,
        job: Job,
        worker_id: str,
        signals: JobSignals,
        *,
        report_interval: float = 0.25,
    ) -> None:
        self.job = job
        self.worker_id = worker_id
        self.signals = signals
        self.review_message: str | None = None
        self.summary = "Done"
        self._store = store
        self._report_interval = report_interval
        self._lock = threading.Lock()
        self._checkpoint = dict(job.checkpoint)
        self._progress = dict(job.progress)
        self._message: str | None = None
        self._pending = False
        self._last_write = float("-inf")

    @property
    def id(self) -> str:
        return self.job.id

    @property
    def params(self) -> dict[str, Any]:
        return self.job.params

    @property
    def attempt(self) -> int:
        """1 for the first attempt; counts retries and restarts after a lost worker."""
        return self.job.attempts

    @property
    def checkpoint(self) -> dict[str, Any]:
        """The last saved checkpoint (a copy): empty on a fresh job, else where to resume."""
        with self._lock:
            return dict(self._checkpoint)

    def save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Persist the handler's steps now (with any held-back progress).

        Raises LeaseLost if another worker owns the job by now: carrying on would duplicate
        its work."""
        with self._lock:
            self._checkpoint = dict(checkpoint)
            self._write(checkpoint=self._checkpoint)

    def report(
        self, message: str | None = None, /, *, force: bool = False, **progress: float
    ) -> None:
        """Say what is happening: a line for people and/or numbers for programs, merged into
        the numbers already reported (`ctx.report(instances_received=12)`)."""
        with self._lock:
            if message is not None:
                self._message = message
            self._progress.update(progress)
            self._pending = True
            if force or time.monotonic() - self._last_write >= self._report_interval:
                self._flush_locked()

    def flush(self) -> None:
        """Write what report() held back, if anything."""
        with self._lock:
            self._flush_locked()

    def note(self, message: str) -> None:
        """Add a line to the job's events without changing its state or message."""
        if not self._store.note(self.job.id, self.worker_id, message):
            self.signals.lease_lost.set()

    def request_review(self, message: str) -> None:
        """End this attempt in needs_review instead of succeeded, once the handler returns."""
        self.review_message = message

    def set_summary(self, message: str) -> None:
        """The line shown once the job has succeeded (default "Done")."""
        self.summary = message

    @property
    def cancelled(self) -> bool:
        """True once the job should stop: cancel requested, pool stopping, or lease lost.
        Cheap: reads flags the pool's heartbeat thread keeps up to date."""
        return self.signals.any()

    def raise_if_cancelled(self) -> None:
        """Raise JobCancelled when `cancelled`; call it where stopping leaves a resumable state."""
        if self.signals.any():
            raise JobCancelled(self.job.id)

    def _flush_locked(self) -> None:
        if self._pending:
            self._write()

    def _write(self, checkpoint: dict[str, Any] | None = None) -> None:
        ok = self._store.report(
            self.job.id,
            self.worker_id,
            message=self._message,
            progress=dict(self._progress) if self._pending else None,
            checkpoint=checkpoint,
        )
        self._pending = False
        self._last_write = time.monotonic()
        if not ok:
            self.signals.lease_lost.set()
            if checkpoint is not None:
                raise LeaseLost(self.job.id, self.worker_id)
