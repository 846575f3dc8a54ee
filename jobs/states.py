"""Job states and the one table of what may move a job from one state to another."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import NamedTuple

from jobs.errors import IllegalTransition


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING_RETRY = "waiting_retry"
    NEEDS_REVIEW = "needs_review"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


# Priorities: lower is claimed first. What a person (or Flynotes for one) asked for is
# INTERACTIVE; work nobody waits for (prefetch) is BACKGROUND and never delays it.
INTERACTIVE = 0
BACKGROUND = 10

# A job in one of these states holds its dedupe key: submitting the same kind+key returns it.
ACTIVE_STATES: frozenset[JobState] = frozenset(
    {JobState.QUEUED, JobState.RUNNING, JobState.WAITING_RETRY}
)
# No worker touches a job in these states again until someone acts on it.
FINISHED_STATES: frozenset[JobState] = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.NEEDS_REVIEW}
)


class Action(StrEnum):
    CLAIM = "claim"
    SUCCEED = "succeed"
    FAIL = "fail"
    SCHEDULE_RETRY = "schedule_retry"
    NEEDS_REVIEW = "needs_review"
    CANCEL = "cancel"
    RELEASE = "release"
    RETRY = "retry"


class Transition(NamedTuple):
    sources: frozenset[JobState]
    target: JobState


def _t(target: JobState, *sources: JobState) -> Transition:
    return Transition(frozenset(sources), target)


S = JobState
# Keyed by action rather than by (source, target) because two actions share an edge with
# different rules: running -> queued is a worker's release, not a user's retry.
TRANSITIONS: Mapping[Action, Transition] = {
    # running -> running: reclaiming a job whose worker's lease expired.
    Action.CLAIM: _t(S.RUNNING, S.QUEUED, S.WAITING_RETRY, S.RUNNING),
    Action.SUCCEED: _t(S.SUCCEEDED, S.RUNNING),
    Action.FAIL: _t(S.FAILED, S.RUNNING),
    Action.SCHEDULE_RETRY: _t(S.WAITING_RETRY, S.RUNNING),
    Action.NEEDS_REVIEW: _t(S.NEEDS_REVIEW, S.RUNNING),
    Action.CANCEL: _t(S.CANCELLED, S.QUEUED, S.WAITING_RETRY, S.RUNNING, S.NEEDS_REVIEW),
    Action.RELEASE: _t(S.QUEUED, S.RUNNING),
    # needs_review: once staff have resolved what needed review, the job can run again.
    Action.RETRY: _t(S.QUEUED, S.FAILED, S.CANCELLED, S.NEEDS_REVIEW),
}


def can_transition(source: JobState, target: JobState) -> bool:
    return any(source in t.sources and t.target == target for t in TRANSITIONS.values())


def check_transition(action: Action, job_id: str, source: JobState) -> JobState:
    """The state `action` moves the job to; IllegalTransition if `source` does not allow it."""
    sources, target = TRANSITIONS[action]
    if source not in sources:
        allowed = ", ".join(sorted(sources))
        raise IllegalTransition(
            f"cannot {action.value.replace('_', ' ')} job {job_id}: it is {source.value}"
            f" (only from {allowed})",
            job_id=job_id,
            source=source,
            target=target,
        )
    return target
