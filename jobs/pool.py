"""WorkerPool: threads that claim jobs, run their handlers and record how each attempt ended."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from jobs.context import JobContext, JobSignals
from jobs.errors import JobCancelled, LeaseLost, PermanentError, TransientError
from jobs.job import Job
from jobs.retry import RetryPolicy
from jobs.states import INTERACTIVE
from jobs.store import JobStore

log = logging.getLogger(__name__)

Handler = Callable[[JobContext], None]


@dataclass
class _Running:
    worker_id: str
    ctx: JobContext
    renewed_at: float = field(default_factory=time.monotonic)


class WorkerPool:
    """N worker threads plus one heartbeat thread, in this process.

    Workers wait on events, never sleep: stop() and notify() take effect at once. The
    heartbeat thread renews the leases of running jobs every lease_seconds / 3, and every
    poll_interval passes on cancel requests to handlers and writes held-back progress."""

    def __init__(
        self,
        store: JobStore,
        handlers: Mapping[str, Handler],
        *,
        workers: int = 2,
        lease_seconds: float = 30.0,
        poll_interval: float = 1.0,
        retry_policy: RetryPolicy | None = None,
        worker_id_prefix: str | None = None,
        report_interval: float = 0.25,
        reserved_for_interactive: int = 1,
    ) -> None:
        """`reserved_for_interactive` of the workers (never all of them) claim only
        INTERACTIVE jobs, so a person's fetch starts at once even while every other worker
        is busy with background work."""
        if workers < 1 or lease_seconds <= 0 or poll_interval <= 0:
            raise ValueError("need workers >= 1, lease_seconds > 0 and poll_interval > 0")
        self._store = store
        self._handlers = dict(handlers)
        self._workers = workers
        self._lease_seconds = lease_seconds
        self._poll_interval = poll_interval
        self._policy = retry_policy or RetryPolicy()
        self._prefix = worker_id_prefix or f"{socket.gethostname()}:{os.getpid()}"
        self._report_interval = report_interval
        self._reserved = min(max(0, reserved_for_interactive), workers - 1)
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._heartbeat_stop = threading.Event()
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._threads: list[threading.Thread] = []
        self._heartbeat: threading.Thread | None = None

    def __enter__(self) -> WorkerPool:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self._threads:
            raise RuntimeError("a WorkerPool starts once")
        # Daemon threads: a handler that ignores cancellation must not keep the process alive
        # after stop() has released its job.
        for i in range(1, self._workers + 1):
            worker_id = f"{self._prefix}-{i}"
            most = INTERACTIVE if i <= self._reserved else None
            t = threading.Thread(
                target=self._work, args=(worker_id, most), name=worker_id, daemon=True
            )
            self._threads.append(t)
        self._heartbeat = threading.Thread(
            target=self._beat, name=f"{self._prefix}-heartbeat", daemon=True
        )
        for t in [*self._threads, self._heartbeat]:
            t.start()

    def notify(self) -> None:
        """Wake idle workers now (call after submitting a job in this process)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming, tell running handlers to stop (JobContext.cancelled turns True), wait
        up to `timeout` seconds, then release the jobs of handlers still running so another
        worker or process resumes them from their checkpoint."""
        self._stopping.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            stuck = list(self._running.items())
        message = f"Did not stop within {timeout:g} s of shutdown; will resume"
        for job_id, running in stuck:
            self._settle(job_id, partial(self._store.release, job_id, running.worker_id, message))
        self._heartbeat_stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()

    # -- worker threads ----------------------------------------------------------------

    def _work(self, worker_id: str, max_priority: int | None = None) -> None:
        kinds = list(self._handlers)
        while True:
            # Cleared before claiming so that a notify() during the claim is not lost; stop()
            # sets _stopping before _wake, so if this clear swallowed stop's wake-up the
            # check below sees _stopping.
            self._wake.clear()
            if self._stopping.is_set():
                break
            # While a person's job runs here, background work waits (it would share the
            # PACS, the disk and the processor with it): only interactive jobs are taken.
            most = max_priority
            if most is None and self._interactive_running():
                most = INTERACTIVE
            try:
                job = self._store.claim(worker_id, kinds, self._lease_seconds, max_priority=most)
            except Exception:
                log.exception(
                    "%s: claiming failed; trying again in %s s", worker_id, self._poll_interval
                )
                job = None
            if job is None:
                self._wake.wait(self._poll_interval)
                continue
            signals = JobSignals(stopping=self._stopping)
            ctx = JobContext(
                self._store, job, worker_id, signals, report_interval=self._report_interval
            )
            with self._lock:
                self._running[job.id] = _Running(worker_id, ctx)
            try:
                self._attempt(job, ctx)
            finally:
                with self._lock:
                    self._running.pop(job.id, None)

    def _interactive_running(self) -> bool:
        with self._lock:
            return any(r.ctx.job.priority <= INTERACTIVE for r in self._running.values())

    def _attempt(self, job: Job, ctx: JobContext) -> None:
        store, worker_id = self._store, ctx.worker_id
        end: Callable[[], object]
        if self._stopping.is_set():
            end = partial(store.release, job.id, worker_id)
        elif job.cancel_requested:  # requested before its previous worker died
            end = partial(store.acknowledge_cancel, job.id, worker_id)
        elif job.attempts > self._policy.max_attempts:
            # Only reclaims after lost workers get here: a job that keeps killing its worker.
            message = f"Worker lost. Gave up after {self._policy.max_attempts} attempts."
            end = partial(store.fail, job.id, worker_id, message, error="worker lost")
        else:
            try:
                self._handlers[job.kind](ctx)
            except JobCancelled:
                end = partial(self._end_cancelled, ctx)
            except TransientError as e:
                end = partial(self._end_transient, ctx, e)
            except PermanentError as e:
                end = partial(store.fail, job.id, worker_id, _sentence(e), error=_describe(e))
            except LeaseLost:
                log.warning("%s: lost the lease of job %s while running it", worker_id, job.id)
                return
            except Exception as e:
                log.exception("job %s (%s): unexpected error", job.id, job.kind)
                message = f"Unexpected error: {_describe(e)}"
                end = partial(store.fail, job.id, worker_id, message, error=_describe(e))
            else:
                if ctx.review_message is not None:
                    end = partial(store.needs_review, job.id, worker_id, ctx.review_message)
                else:
                    end = partial(store.succeed, job.id, worker_id, ctx.summary)
        self._settle(job.id, end)

    def _end_cancelled(self, ctx: JobContext) -> None:
        if ctx.signals.lease_lost.is_set():
            raise LeaseLost(ctx.id, ctx.worker_id)
        # The DB decides: the flag may be set without the heartbeat thread having seen it yet.
        if self._stopping.is_set() and not self._store.cancel_requests([ctx.id]):
            self._store.release(ctx.id, ctx.worker_id)
        else:
            self._store.acknowledge_cancel(ctx.id, ctx.worker_id)

    def _end_transient(self, ctx: JobContext, error: TransientError) -> None:
        now = self._store.now()
        attempt = ctx.attempt
        delay = self._policy.next_delay(attempt, ctx.job.started_at or now, now)
        sentence = _sentence(error)
        if delay is None:
            self._store.fail(
                ctx.id,
                ctx.worker_id,
                f"{sentence}. Gave up after {attempt} attempts.",
                error=_describe(error),
                transient=True,
            )
            return
        message = (
            f"{sentence}. Next try in {_duration(delay)}"
            f" (attempt {attempt + 1} of {self._policy.max_attempts})."
        )
        self._store.schedule_retry(
            ctx.id, ctx.worker_id, now + timedelta(seconds=delay), message, _describe(error)
        )

    def _settle(self, job_id: str, write: Callable[[], object]) -> None:
        """Record how an attempt ended (after writing held-back progress). If the database is
        unreachable the job stays running until its lease expires and another worker redoes
        the attempt from the last checkpoint, so logging is all that is left to do here."""
        with self._lock:
            running = self._running.get(job_id)
        try:
            if running is not None:
                running.ctx.flush()
            write()
        except LeaseLost as e:
            log.warning("%s", e)
        except Exception:
            log.exception("could not record the end of job %s", job_id)

    # -- heartbeat thread --------------------------------------------------------------

    def _beat(self) -> None:
        tick = min(self._poll_interval, self._lease_seconds / 3)
        while not self._heartbeat_stop.wait(tick):
            with self._lock:
                running = dict(self._running)
            if not running:
                continue
            try:
                self._renew(running)
                for job_id in self._store.cancel_requests(list(running)):
                    running[job_id].ctx.signals.cancel_requested.set()
                for r in running.values():
                    r.ctx.flush()
            except Exception:
                log.exception("heartbeat failed; trying again in %s s", tick)

    def _renew(self, running: dict[str, _Running]) -> None:
        now = time.monotonic()
        for job_id, r in running.items():
            if now - r.renewed_at < self._lease_seconds / 3:
                continue
            if self._store.heartbeat(job_id, r.worker_id, self._lease_seconds):
                r.renewed_at = now
            else:
                log.warning("%s lost the lease of job %s", r.worker_id, job_id)
                r.ctx.signals.lease_lost.set()


def _sentence(error: BaseException) -> str:
    # Handlers' messages are sentences; the pool appends its own, so drop the full stop.
    return str(error).strip().rstrip(".") or type(error).__name__


def _describe(error: BaseException) -> str:
    """Type and text of an error, and of the error it was raised from, on one line."""
    text = _typed(error)
    if error.__cause__ is not None:
        text += f" (caused by {_typed(error.__cause__)})"
    return " ".join(text.split())


def _typed(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
