"""The transition table and the retry policy's numbers (no database)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from jobs import TRANSITIONS, Action, IllegalTransition, JobState, RetryPolicy
from jobs.states import can_transition, check_transition

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_every_state_is_reachable_and_succeeded_is_final():
    targets = {t.target for t in TRANSITIONS.values()} | {JobState.QUEUED}
    assert targets == set(JobState)
    assert not any(can_transition(JobState.SUCCEEDED, s) for s in JobState)


@pytest.mark.parametrize(
    ("action", "source", "target"),
    [
        (Action.CLAIM, JobState.QUEUED, JobState.RUNNING),
        (Action.CLAIM, JobState.WAITING_RETRY, JobState.RUNNING),
        (Action.CLAIM, JobState.RUNNING, JobState.RUNNING),
        (Action.RETRY, JobState.FAILED, JobState.QUEUED),
        (Action.RETRY, JobState.CANCELLED, JobState.QUEUED),
        (Action.CANCEL, JobState.WAITING_RETRY, JobState.CANCELLED),
        (Action.RELEASE, JobState.RUNNING, JobState.QUEUED),
    ],
)
def test_legal_transitions(action, source, target):
    assert check_transition(action, "j1", source) == target


@pytest.mark.parametrize(
    ("action", "source"),
    [
        (Action.RETRY, JobState.RUNNING),  # shares running -> queued with release, still refused
        (Action.RETRY, JobState.SUCCEEDED),
        (Action.SUCCEED, JobState.QUEUED),
        (Action.CANCEL, JobState.FAILED),
        (Action.CLAIM, JobState.NEEDS_REVIEW),
    ],
)
def test_illegal_transitions_say_why(action, source):
    with pytest.raises(IllegalTransition) as info:
        check_transition(action, "j1", source)
    assert f"job j1: it is {source.value}" in str(info.value)
    assert info.value.source == source


def test_delays_grow_exponentially_up_to_the_cap():
    policy = RetryPolicy(
        initial_delay=1, factor=2, max_delay=10, jitter=0, max_attempts=10, max_total=None
    )
    delays = [policy.next_delay(n, T0, T0) for n in range(1, 10)]
    assert delays == [1, 2, 4, 8, 10, 10, 10, 10, 10]
    assert policy.next_delay(10, T0, T0) is None


def test_fractional_jitter_stays_within_its_band_and_under_the_cap():
    low = RetryPolicy(initial_delay=10, max_delay=100, jitter=0.2, random=lambda: 0.0)
    high = RetryPolicy(initial_delay=10, max_delay=100, jitter=0.2, random=lambda: 1.0)
    assert low.next_delay(1, T0, T0) == pytest.approx(8.0)
    assert high.next_delay(1, T0, T0) == pytest.approx(12.0)
    capped = RetryPolicy(initial_delay=100, max_delay=100, jitter=0.2, random=lambda: 1.0)
    assert capped.next_delay(1, T0, T0) == 100

    rng = random.Random(7)
    sampled = RetryPolicy(
        initial_delay=10, factor=3, max_delay=1000, jitter=0.25, random=rng.random
    )
    for attempt in (1, 2, 3):
        base = 10 * 3 ** (attempt - 1)
        for _ in range(200):
            delay = sampled.next_delay(attempt, T0, T0)
            assert delay is not None
            assert base * 0.75 <= delay <= base * 1.25


def test_full_jitter_draws_from_zero_to_the_delay():
    policy = RetryPolicy(initial_delay=4, jitter="full", random=lambda: 0.5)
    assert policy.next_delay(2, T0, T0) == pytest.approx(4.0)  # half of 8
    zero = RetryPolicy(initial_delay=4, jitter="full", random=lambda: 0.0)
    assert zero.next_delay(3, T0, T0) == 0


def test_gives_up_after_max_attempts():
    policy = RetryPolicy(max_attempts=3, jitter=0, max_total=None)
    assert policy.next_delay(2, T0, T0) is not None
    assert policy.next_delay(3, T0, T0) is None


def test_gives_up_when_the_next_try_would_start_past_max_total():
    policy = RetryPolicy(initial_delay=60, factor=1, max_delay=60, jitter=0, max_total=600)
    assert policy.next_delay(2, T0, T0 + timedelta(seconds=540)) == 60
    assert policy.next_delay(2, T0, T0 + timedelta(seconds=541)) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_delay": -1},
        {"initial_delay": 10, "max_delay": 5},
        {"factor": 0.5},
        {"jitter": 1.5},
        {"max_attempts": 0},
    ],
)
def test_rejects_nonsense(kwargs):
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)
