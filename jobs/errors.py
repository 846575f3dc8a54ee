"""Exceptions of the jobs package: those the store raises and those handlers raise."""

from __future__ import annotations


class JobError(Exception):
    """Base of the errors the job store raises."""


class JobNotFound(JobError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id}")
        self.job_id = job_id


class IllegalTransition(JobError):
    """The job's current state does not allow the requested change (HTTP: 409)."""

    def __init__(self, message: str, *, job_id: str, source: str, target: str) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.source = source
        self.target = target


class LeaseLost(JobError):
    """The worker no longer holds the job: its lease expired and another worker took it,
    or the job was released. Whatever it wanted to write is refused."""

    def __init__(self, job_id: str, worker_id: str) -> None:
        super().__init__(f"worker {worker_id} no longer holds job {job_id}")
        self.job_id = job_id
        self.worker_id = worker_id


class TransientError(Exception):
    """Raised by a handler when a later attempt may succeed (peer unreachable, busy...).

    The message is one sentence for people, e.g. "PACS unreachable"."""


class PermanentError(Exception):
    """Raised by a handler when retrying cannot help; the job fails with this message."""


class JobCancelled(Exception):
    """Raised by JobContext.raise_if_cancelled(): the job was cancelled or the pool is stopping."""
