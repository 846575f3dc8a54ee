"""WorkerPool and JobContext against real databases, with short leases and poll intervals."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from jobs_helpers import wait_for

from jobs import (
    BACKGROUND,
    FINISHED_STATES,
    Job,
    JobContext,
    JobState,
    JobStore,
    PermanentError,
    RetryPolicy,
    TransientError,
    WorkerPool,
)

FAST_RETRY = RetryPolicy(initial_delay=0.05, factor=1, max_delay=0.05, jitter=0, max_attempts=5)


@pytest.fixture
def make_pool(store: JobStore) -> Iterator[Callable[..., WorkerPool]]:
    pools: list[WorkerPool] = []

    def make(handlers: dict[str, Callable[[JobContext], None]], **kwargs: Any) -> WorkerPool:
        options: dict[str, Any] = {
            "workers": 2,
            "lease_seconds": 2.0,
            "poll_interval": 0.05,
            "retry_policy": FAST_RETRY,
        }
        pool = WorkerPool(store, handlers, **{**options, **kwargs})
        pools.append(pool)
        pool.start()
        return pool

    yield make
    for pool in pools:
        pool.stop(timeout=2)


def finished(store: JobStore, job_id: str) -> Callable[[], Job | None]:
    def check() -> Job | None:
        job = store.get(job_id)
        return job if job.state in FINISHED_STATES else None

    return check


def test_a_handler_that_returns_succeeds_with_its_progress(store, make_pool):
    def handler(ctx: JobContext) -> None:
        assert ctx.params == {"patient": "P1"} and ctx.attempt == 1 and ctx.checkpoint == {}
        for i in range(1, 201):  # per received file: the context throttles the writes
            ctx.report(f"Receiving ({i})", instances_received=i)
        ctx.report(studies_done=1, force=True)
        ctx.set_summary("Fetched 1 study (200 instances)")

    make_pool({"fetch": handler})
    job, _ = store.submit("fetch", {"patient": "P1"})
    done = wait_for(finished(store, job.id))
    assert done.state == JobState.SUCCEEDED and done.message == "Fetched 1 study (200 instances)"
    assert done.progress == {"instances_received": 200, "studies_done": 1}
    assert done.version < 10  # 200 reports, a handful of writes


def test_transient_errors_are_retried_until_success(store, make_pool):
    calls = []

    def handler(ctx: JobContext) -> None:
        calls.append(ctx.attempt)
        if len(calls) < 3:
            raise TransientError("PACS unreachable") from ConnectionRefusedError(111, "refused")

    make_pool({"fetch": handler})
    job, _ = store.submit("fetch", {})
    done = wait_for(finished(store, job.id))
    assert done.state == JobState.SUCCEEDED and done.attempts == 3 and calls == [1, 2, 3]
    waits = [e for e in store.events(job.id) if e.state == JobState.WAITING_RETRY]
    assert [e.message for e in waits] == [
        "PACS unreachable. Next try in 0 s (attempt 2 of 5).",
        "PACS unreachable. Next try in 0 s (attempt 3 of 5).",
    ]
    assert waits[0].error == (
        "TransientError: PACS unreachable (caused by ConnectionRefusedError: [Errno 111] refused)"
    )


def test_gives_up_when_the_policy_says_so(store, make_pool):
    def handler(ctx: JobContext) -> None:
        raise TransientError("PACS unreachable")

    policy = RetryPolicy(initial_delay=0.01, max_delay=0.01, jitter=0, max_attempts=3)
    make_pool({"fetch": handler}, retry_policy=policy)
    job, _ = store.submit("fetch", {})
    done = wait_for(finished(store, job.id))
    assert done.message == "PACS unreachable. Gave up after 3 attempts."
    assert done.attempts == 3 and done.error_transient is True


def test_permanent_and_unexpected_errors_fail_at_once(store, make_pool):
    def permanent(ctx: JobContext) -> None:
        raise PermanentError("No such patient in the PACS")

    def broken(ctx: JobContext) -> None:
        raise KeyError("StudyInstanceUID")

    make_pool({"permanent": permanent, "broken": broken})
    p, _ = store.submit("permanent", {})
    b, _ = store.submit("broken", {})
    p_done = wait_for(finished(store, p.id))
    assert (p_done.state, p_done.message, p_done.attempts) == (
        "failed",
        "No such patient in the PACS",
        1,
    )
    assert p_done.error == "PermanentError: No such patient in the PACS"
    assert p_done.error_transient is False
    b_done = wait_for(finished(store, b.id))
    assert b_done.state == JobState.FAILED and b_done.attempts == 1
    assert b_done.message == "Unexpected error: KeyError: 'StudyInstanceUID'"
    assert "Traceback" not in b_done.message


def test_a_handler_can_ask_for_review(store, make_pool):
    def handler(ctx: JobContext) -> None:
        ctx.request_review("1 study filed under another patient ID")

    make_pool({"fetch": handler})
    job, _ = store.submit("fetch", {})
    done = wait_for(finished(store, job.id))
    assert done.state == JobState.NEEDS_REVIEW
    assert done.message == "1 study filed under another patient ID"


def test_cancel_while_running(store, make_pool):
    started = threading.Event()

    def handler(ctx: JobContext) -> None:
        ctx.save_checkpoint({"step": 1})
        started.set()
        wait_for(lambda: ctx.cancelled, what="cancellation seen by the handler")
        ctx.raise_if_cancelled()

    make_pool({"fetch": handler})
    job, _ = store.submit("fetch", {})
    assert started.wait(10)
    store.request_cancel(job.id)
    done = wait_for(finished(store, job.id))
    assert done.state == JobState.CANCELLED and done.checkpoint == {"step": 1}
    assert [e.message for e in store.events(job.id)][-2:] == ["Cancel requested", "Cancelled"]


def test_stop_releases_a_job_at_its_checkpoint(store, make_pool):
    started = threading.Event()

    def handler(ctx: JobContext) -> None:
        ctx.save_checkpoint({"studies_done": 1})
        started.set()
        wait_for(lambda: ctx.cancelled, what="shutdown seen by the handler")
        ctx.raise_if_cancelled()

    pool = make_pool({"fetch": handler})
    job, _ = store.submit("fetch", {})
    assert started.wait(10)
    pool.stop(timeout=5)
    released = store.get(job.id)
    assert released.state == JobState.QUEUED and released.attempts == 0
    assert released.checkpoint == {"studies_done": 1}
    assert store.events(job.id)[-1].message == "Interrupted by shutdown; will resume"


def test_stop_releases_a_job_whose_handler_does_not_finish_in_time(store, make_pool):
    started, let_go = threading.Event(), threading.Event()

    def handler(ctx: JobContext) -> None:
        ctx.save_checkpoint({"studies_done": 2})
        started.set()
        let_go.wait(30)  # ignores ctx.cancelled, like a handler stuck in a network call

    pool = make_pool({"fetch": handler})
    job, _ = store.submit("fetch", {})
    assert started.wait(10)
    pool.stop(timeout=0.2)
    released = store.get(job.id)
    assert released.state == JobState.QUEUED and released.checkpoint == {"studies_done": 2}
    assert released.lease_owner is None
    let_go.set()
    # The handler finishing late must not overwrite the release.
    assert store.get(job.id).state == JobState.QUEUED


def test_notify_wakes_an_idle_pool_at_once(store, make_pool, monkeypatch):
    empty_claims = threading.Semaphore(0)
    claim = store.claim

    def counting_claim(*args: Any, **kwargs: Any) -> Job | None:
        job = claim(*args, **kwargs)
        if job is None:
            empty_claims.release()
        return job

    monkeypatch.setattr(store, "claim", counting_claim)
    ran = threading.Event()
    pool = make_pool({"fetch": lambda ctx: ran.set()}, poll_interval=60)
    # Both workers found nothing and now wait 60 s before polling again, unless notified.
    assert empty_claims.acquire(timeout=10) and empty_claims.acquire(timeout=10)
    store.submit("fetch", {})
    pool.notify()
    assert ran.wait(5)


def test_a_dead_workers_job_is_resumed_from_its_checkpoint(store, make_pool):
    job, _ = store.submit("fetch", {})
    claimed = store.claim("dead-worker", ["fetch"], lease_seconds=0.3)
    assert claimed is not None
    store.report(job.id, "dead-worker", checkpoint={"studies_done": ["1.2.3"]})
    seen: list[dict[str, Any]] = []

    def handler(ctx: JobContext) -> None:
        seen.append(ctx.checkpoint)

    make_pool({"fetch": handler})  # the dead worker never heartbeats again
    done = wait_for(finished(store, job.id))
    assert done.state == JobState.SUCCEEDED and done.attempts == 2
    assert seen == [{"studies_done": ["1.2.3"]}]
    assert any("Lease of dead-worker expired" in e.message for e in store.events(job.id))


def test_heartbeats_keep_a_long_job_from_being_taken_over(store, make_pool):
    started, let_go = threading.Event(), threading.Event()
    runs: list[str] = []

    def handler(ctx: JobContext) -> None:
        runs.append(ctx.worker_id)
        started.set()
        let_go.wait(10)

    # 1.5 s, renewed every 0.5 s: a 2-core CI machine can stall a heartbeat by a few hundred
    # ms (0.3 s let the second pool take the job over now and then). Without heartbeats the
    # lease would never move, and the waits below would fail.
    make_pool({"fetch": handler}, lease_seconds=1.5, worker_id_prefix="a")
    job, _ = store.submit("fetch", {})
    assert started.wait(10)
    make_pool({"fetch": handler}, lease_seconds=1.5, worker_id_prefix="b")
    first_expiry = store.get(job.id).lease_expires_at
    # Several lease lengths pass: the lease must have been renewed, never lost.
    wait_for(lambda: store.get(job.id).lease_expires_at > first_expiry, what="lease renewed")
    last = store.get(job.id).lease_expires_at
    wait_for(lambda: store.get(job.id).lease_expires_at > last, what="lease renewed again")
    let_go.set()
    assert wait_for(finished(store, job.id)).state == JobState.SUCCEEDED
    assert len(runs) == 1


def test_a_job_that_keeps_losing_its_worker_is_given_up(store, make_pool):
    job, _ = store.submit("fetch", {})
    for dead in ("dead-1", "dead-2"):  # a negative lease: expired the moment it is taken
        assert store.claim(dead, ["fetch"], lease_seconds=-1) is not None
    ran = threading.Event()
    policy = RetryPolicy(max_attempts=2)
    make_pool({"fetch": lambda ctx: ran.set()}, retry_policy=policy)
    done = wait_for(finished(store, job.id))
    assert done.state == JobState.FAILED and done.attempts == 3
    assert done.message == "Worker lost. Gave up after 2 attempts."
    assert not ran.is_set()


def test_a_person_s_job_starts_while_background_work_fills_the_other_workers(store, make_pool):
    """Three workers, one kept for interactive work: two long background jobs take the other
    two, a third waits, and a job a person asks for starts at once, ahead of it."""
    release = threading.Event()
    started: list[str] = []

    def handler(ctx: JobContext) -> None:
        started.append(ctx.params["name"])
        if ctx.params["name"].startswith("prefetch"):
            release.wait(10)

    backlog = [
        store.submit("fetch", {"name": f"prefetch-{n}"}, priority=BACKGROUND)[0] for n in range(3)
    ]
    make_pool({"fetch": handler}, workers=3)
    wait_for(lambda: len(started) >= 2, what="two background jobs running")
    asked, _ = store.submit("fetch", {"name": "asked"})
    try:
        wait_for(finished(store, asked.id), what="the interactive job done")
        assert store.get(backlog[2].id).state == JobState.QUEUED  # still behind
        assert sorted(started) == ["asked", "prefetch-0", "prefetch-1"]
    finally:
        release.set()
    for job in backlog:
        wait_for(finished(store, job.id), what="the backlog done")


def test_background_work_waits_while_a_person_s_job_runs(store, make_pool):
    release = threading.Event()
    started: list[str] = []

    def handler(ctx: JobContext) -> None:
        started.append(ctx.params["name"])
        if ctx.params["name"] == "asked":
            release.wait(10)

    claims: list[int | None] = []
    claim = store.claim

    def counted(*args: Any, **kwargs: Any) -> Job | None:
        claims.append(kwargs.get("max_priority"))
        return claim(*args, **kwargs)

    store.claim = counted  # type: ignore[method-assign]
    # Three workers, one kept for interactive work: a worker that could take background
    # work is free whichever one took the person's job.
    make_pool({"fetch": handler}, workers=3)
    store.submit("fetch", {"name": "asked"})
    wait_for(lambda: started == ["asked"], what="the interactive job running")
    # Every worker has looked again since it started (a look decided before it started
    # would not know of it).
    since = len(claims)
    wait_for(lambda: len(claims) >= since + 6, what="the workers looking again")
    later, _ = store.submit("fetch", {"name": "prefetch"}, priority=BACKGROUND)
    looked = len(claims)
    try:
        # Both workers look several times meanwhile, and leave the background job.
        wait_for(lambda: len(claims) >= looked + 6, what="the workers looking again")
        assert store.get(later.id).state == JobState.QUEUED
    finally:
        release.set()
    wait_for(finished(store, later.id), what="the background job after it")
    assert started == ["asked", "prefetch"]
