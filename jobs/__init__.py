"""Job lifecycle: a store of jobs in SQLite or PostgreSQL, and a pool of worker threads.

Knows nothing of DICOM or HTTP: the gateway registers one handler per job kind.
"""

from jobs.context import JobContext
from jobs.db import create_engine, upgrade, write_transaction
from jobs.errors import (
    IllegalTransition,
    JobCancelled,
    JobError,
    JobNotFound,
    LeaseLost,
    PermanentError,
    TransientError,
)
from jobs.job import Job, JobEvent
from jobs.pool import Handler, WorkerPool
from jobs.retry import RetryPolicy
from jobs.states import (
    ACTIVE_STATES,
    BACKGROUND,
    FINISHED_STATES,
    INTERACTIVE,
    TRANSITIONS,
    Action,
    JobState,
)
from jobs.store import JobStore

__all__ = [
    "ACTIVE_STATES",
    "BACKGROUND",
    "FINISHED_STATES",
    "INTERACTIVE",
    "TRANSITIONS",
    "Action",
    "Handler",
    "IllegalTransition",
    "Job",
    "JobCancelled",
    "JobContext",
    "JobError",
    "JobEvent",
    "JobNotFound",
    "JobState",
    "JobStore",
    "LeaseLost",
    "PermanentError",
    "RetryPolicy",
    "TransientError",
    "WorkerPool",
    "create_engine",
    "upgrade",
    "write_transaction",
]
