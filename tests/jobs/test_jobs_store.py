"""JobStore on SQLite and PostgreSQL, with a fake clock so leases and retries need no waiting."""

from __future__ import annotations

import threading
from datetime import UTC, timedelta

import pytest
import sqlalchemy as sa
from jobs_helpers import FakeClock
from sqlalchemy.exc import IntegrityError

from jobs import (
    BACKGROUND,
    INTERACTIVE,
    IllegalTransition,
    JobNotFound,
    JobState,
    JobStore,
    LeaseLost,
    upgrade,
)
from jobs.models import JobRecord

LEASE = 30.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def js(engine, clock) -> JobStore:
    upgrade(engine)
    return JobStore(engine, clock=clock)


def test_lifecycle_queued_running_succeeded(js, clock):
    job, created = js.submit("fetch", {"patient": "P1"})
    assert created
    assert (job.state, job.version, job.attempts, job.message) == ("queued", 1, 0, "Queued")
    assert job.created_at.tzinfo == UTC and job.created_at == clock.now

    clock.advance(1)
    claimed = js.claim("w1", ["fetch"], LEASE)
    assert claimed is not None and claimed.id == job.id
    assert (claimed.state, claimed.attempts, claimed.lease_owner) == ("running", 1, "w1")
    assert claimed.started_at == clock.now
    assert claimed.lease_expires_at == clock.now + timedelta(seconds=LEASE)
    assert claimed.version == 2

    clock.advance(1)
    done = js.succeed(job.id, "w1", "Fetched 2 studies")
    assert (done.state, done.message, done.lease_owner) == ("succeeded", "Fetched 2 studies", None)
    assert done.finished_at == clock.now and done.finished_at.tzinfo == UTC
    assert done.version == 3
    assert [(e.state, e.message) for e in js.events(job.id)] == [
        ("queued", "Queued"),
        ("running", "Started by w1 (attempt 1)"),
        ("succeeded", "Fetched 2 studies"),
    ]
    assert js.get(job.id) == done


def test_unknown_job(js):
    with pytest.raises(JobNotFound):
        js.get("nope")
    with pytest.raises(JobNotFound):
        js.events("nope")
    with pytest.raises(JobNotFound):
        js.request_cancel("nope")


def test_illegal_transitions_are_refused(js):
    job, _ = js.submit("fetch", {})
    with pytest.raises(IllegalTransition, match=r"cannot retry job .*: it is queued"):
        js.retry(job.id)
    js.claim("w1", ["fetch"], LEASE)
    with pytest.raises(IllegalTransition, match="it is running"):
        js.retry(job.id)
    js.succeed(job.id, "w1")
    with pytest.raises(IllegalTransition, match=r"cannot cancel job .*: it is succeeded"):
        js.request_cancel(job.id)
    with pytest.raises(IllegalTransition):
        js.retry(job.id)
    # A worker write on a job that is not running under its lease is a lost lease.
    with pytest.raises(LeaseLost):
        js.fail(job.id, "w1", "boom", error="x")
    assert js.get(job.id).state == JobState.SUCCEEDED


def test_dedupe_returns_the_active_job_until_it_finishes(js, clock):
    first, created = js.submit("fetch", {"p": 1}, dedupe_key="P1:2020")
    clock.advance(1)
    again, created_again = js.submit("fetch", {"p": 2}, dedupe_key="P1:2020")
    assert created and not created_again and again.id == first.id and again.params == {"p": 1}
    other_kind, created_other = js.submit("export", {}, dedupe_key="P1:2020")
    assert created_other and other_kind.id != first.id
    no_key_1, _ = js.submit("fetch", {})
    no_key_2, _ = js.submit("fetch", {})
    assert no_key_1.id != no_key_2.id

    claimed = js.claim("w1", ["fetch"], LEASE)
    assert claimed is not None and claimed.id == first.id
    assert js.submit("fetch", {}, dedupe_key="P1:2020")[0].id == first.id  # running: active
    js.schedule_retry(first.id, "w1", js.now() + timedelta(seconds=5), "busy", "TransientError")
    assert js.submit("fetch", {}, dedupe_key="P1:2020")[0].id == first.id  # waiting_retry
    js.request_cancel(first.id)
    fresh, created_fresh = js.submit("fetch", {}, dedupe_key="P1:2020")
    assert created_fresh and fresh.id != first.id


def test_the_database_itself_refuses_a_second_active_job_with_one_key(js, engine):
    job, _ = js.submit("fetch", {}, dedupe_key="K")
    row = {c.name: getattr(job, c.name) for c in JobRecord.__table__.columns}
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(sa.insert(JobRecord.__table__).values({**row, "id": "other"}))
    with engine.begin() as conn:  # the same key on a finished job is fine
        conn.execute(
            sa.insert(JobRecord.__table__).values({**row, "id": "old", "state": "succeeded"})
        )


def test_concurrent_submits_with_one_key_make_one_job(js):
    barrier = threading.Barrier(8)
    results: list[tuple[str, bool]] = []

    def submit() -> None:
        barrier.wait()
        job, created = js.submit("fetch", {}, dedupe_key="same")
        results.append((job.id, created))

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 8
    assert len({job_id for job_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1


def test_claim_takes_the_oldest_job_of_the_given_kinds(js, clock):
    a, _ = js.submit("fetch", {})
    clock.advance(1)
    b, _ = js.submit("export", {})
    clock.advance(1)
    c, _ = js.submit("fetch", {})
    assert js.claim("w1", [], LEASE) is None
    assert js.claim("w1", ["other"], LEASE) is None
    assert [js.claim("w1", ["fetch"], LEASE).id for _ in range(2)] == [a.id, c.id]
    assert js.claim("w1", ["fetch"], LEASE) is None
    assert js.claim("w1", ["fetch", "export"], LEASE).id == b.id


def test_waiting_retry_is_claimed_once_its_time_has_come(js, clock):
    job, _ = js.submit("fetch", {})
    js.claim("w1", ["fetch"], LEASE)
    waiting = js.schedule_retry(
        job.id, "w1", clock.now + timedelta(seconds=30), "PACS unreachable", "TransientError"
    )
    assert waiting.state == JobState.WAITING_RETRY and waiting.error_transient is True
    assert waiting.next_attempt_at == clock.now + timedelta(seconds=30)
    clock.advance(29)
    assert js.claim("w2", ["fetch"], LEASE) is None
    clock.advance(1)
    again = js.claim("w2", ["fetch"], LEASE)
    assert again is not None and again.attempts == 2 and again.message == "Running (attempt 2)"
    assert again.next_attempt_at is None and again.started_at == waiting.started_at


def test_expired_lease_hands_the_job_over_and_refuses_the_stale_worker(js, clock):
    job, _ = js.submit("fetch", {})
    js.claim("dead", ["fetch"], LEASE)
    assert js.report(job.id, "dead", checkpoint={"studies_done": ["1.2.3"]}, message="step 1")
    clock.advance(LEASE - 1)
    assert js.claim("alive", ["fetch"], LEASE) is None  # lease still valid

    clock.advance(2)
    taken = js.claim("alive", ["fetch"], LEASE)
    assert taken is not None and taken.id == job.id
    assert taken.lease_owner == "alive" and taken.attempts == 2
    assert taken.checkpoint == {"studies_done": ["1.2.3"]}
    assert "Lease of dead expired; restarted by alive" in js.events(job.id)[-1].message

    assert not js.heartbeat(job.id, "dead", LEASE)
    assert not js.report(job.id, "dead", checkpoint={"studies_done": []})
    with pytest.raises(LeaseLost):
        js.succeed(job.id, "dead")
    with pytest.raises(LeaseLost):
        js.release(job.id, "dead")
    current = js.get(job.id)
    assert current.checkpoint == {"studies_done": ["1.2.3"]} and current.state == "running"
    assert js.succeed(job.id, "alive").state == JobState.SUCCEEDED


def test_heartbeat_keeps_the_lease_without_bumping_the_version(js, clock):
    job, _ = js.submit("fetch", {})
    claimed = js.claim("w1", ["fetch"], LEASE)
    clock.advance(LEASE - 1)
    assert js.heartbeat(job.id, "w1", LEASE)
    clock.advance(LEASE - 1)
    assert js.claim("w2", ["fetch"], LEASE) is None
    assert js.get(job.id).version == claimed.version


def test_report_bumps_the_version_only_on_change(js, clock):
    job, _ = js.submit("fetch", {})
    v = js.claim("w1", ["fetch"], LEASE).version
    assert js.report(job.id, "w1", message="Moving", progress={"received": 1})
    assert js.get(job.id).version == v + 1
    clock.advance(1)
    assert js.report(job.id, "w1", message="Moving", progress={"received": 1})
    unchanged = js.get(job.id)
    assert unchanged.version == v + 1 and unchanged.updated_at == clock.now - timedelta(seconds=1)
    assert js.report(job.id, "w1", progress={"received": 2})
    changed = js.get(job.id)
    assert changed.version == v + 2 and changed.progress == {"received": 2}
    assert changed.message == "Moving" and changed.updated_at == clock.now
    assert js.report(job.id, "w1")  # nothing to say: just asks whether the lease is held
    assert not js.report(job.id, "w2")


def test_cancel_queued_at_once_and_running_through_the_flag(js, clock):
    queued, _ = js.submit("fetch", {})
    cancelled = js.request_cancel(queued.id)
    assert cancelled.state == JobState.CANCELLED and cancelled.finished_at == clock.now
    assert js.request_cancel(queued.id) == cancelled  # idempotent: no new version

    running, _ = js.submit("fetch", {})
    js.claim("w1", ["fetch"], LEASE)
    flagged = js.request_cancel(running.id)
    assert flagged.state == JobState.RUNNING and flagged.cancel_requested
    assert js.request_cancel(running.id).version == flagged.version
    assert js.cancel_requests([running.id, queued.id]) == {running.id}
    done = js.acknowledge_cancel(running.id, "w1")
    assert done.state == JobState.CANCELLED and done.lease_owner is None


def test_cancel_of_a_running_job_whose_worker_died_is_immediate(js, clock):
    job, _ = js.submit("fetch", {})
    js.claim("dead", ["fetch"], LEASE)
    clock.advance(LEASE + 1)
    assert js.request_cancel(job.id).state == JobState.CANCELLED


def test_retry_requeues_with_fresh_attempts_and_keeps_the_checkpoint(js, clock):
    job, _ = js.submit("fetch", {}, dedupe_key="K")
    js.claim("w1", ["fetch"], LEASE)
    js.report(job.id, "w1", checkpoint={"step": 3})
    failed = js.fail(job.id, "w1", "Patient not found", error="PermanentError: no match")
    assert (failed.state, failed.error, failed.error_transient) == (
        "failed",
        "PermanentError: no match",
        False,
    )
    clock.advance(5)
    again = js.retry(job.id)
    assert (again.state, again.attempts, again.error, again.finished_at) == (
        "queued",
        0,
        None,
        None,
    )
    assert again.checkpoint == {"step": 3} and again.started_at is None
    assert js.claim("w2", ["fetch"], LEASE).attempts == 1


def test_retry_refused_while_another_job_holds_the_dedupe_key(js):
    old, _ = js.submit("fetch", {}, dedupe_key="K")
    js.request_cancel(old.id)
    new, _ = js.submit("fetch", {}, dedupe_key="K")
    with pytest.raises(IllegalTransition, match=f"job {new.id} with the same dedupe key"):
        js.retry(old.id)
    assert js.get(old.id).state == JobState.CANCELLED


def test_release_gives_the_job_back_with_its_checkpoint(js):
    job, _ = js.submit("fetch", {})
    js.claim("w1", ["fetch"], LEASE)
    js.report(job.id, "w1", checkpoint={"step": 2})
    released = js.release(job.id, "w1")
    assert (released.state, released.attempts, released.lease_owner) == ("queued", 0, None)
    assert released.checkpoint == {"step": 2}
    again = js.claim("w2", ["fetch"], LEASE)
    assert again.id == job.id and again.attempts == 1 and again.checkpoint == {"step": 2}


def test_needs_review_is_finished_but_can_be_retried(js):
    job, _ = js.submit("fetch", {}, dedupe_key="K")
    js.claim("w1", ["fetch"], LEASE)
    review = js.needs_review(job.id, "w1", "2 studies filed under another patient ID")
    assert review.state == JobState.NEEDS_REVIEW and review.finished_at is not None
    assert js.submit("fetch", {}, dedupe_key="K")[1]  # no longer active: a new job
    js.request_cancel(js.list(kind="fetch", state=JobState.QUEUED)[0].id)
    assert js.retry(job.id).state == JobState.QUEUED


def test_list_filters_and_pages_newest_first(js, clock):
    ids = []
    for i in range(5):
        clock.advance(1)
        kind = "fetch" if i % 2 == 0 else "export"
        ids.append(js.submit(kind, {"i": i}, dedupe_key=f"P{i}%_x")[0].id)
    assert [j.id for j in js.list()] == ids[::-1]
    assert [j.id for j in js.list(kind="fetch")] == [ids[4], ids[2], ids[0]]
    assert [j.id for j in js.list(limit=2, offset=1)] == [ids[3], ids[2]]
    js.request_cancel(ids[1])
    assert [j.id for j in js.list(state=JobState.CANCELLED)] == [ids[1]]
    assert [j.id for j in js.list(state="cancelled")] == [ids[1]]
    assert len(js.list(state=[JobState.QUEUED, JobState.CANCELLED])) == 5
    assert [j.id for j in js.list(dedupe_key_prefix="P3%")] == [ids[3]]
    assert js.list(dedupe_key_prefix="P%") == []  # % is a character here, not a wildcard


def test_list_filters_on_top_level_params(js):
    a, _ = js.submit("fetch", {"pacs_patient_id": "P1", "pacs": "main", "modalities": ["CT"]})
    b, _ = js.submit("fetch", {"pacs_patient_id": "P2", "pacs": "main"})
    c, _ = js.submit("other", {"pacs_patient_id": "P1", "pacs": "backup"})
    js.submit("fetch", {"r4_patient_id": "P1"})  # same value under another key: no match

    def ids(**filters):
        return {j.id for j in js.list(**filters)}

    assert ids(params_match={"pacs_patient_id": "P1"}) == {a.id, c.id}
    assert ids(params_match={"pacs_patient_id": "P1", "pacs": "main"}) == {a.id}
    assert ids(params_match={"pacs_patient_id": "P1"}, kind="fetch") == {a.id}
    assert ids(params_match={"pacs_patient_id": "P2"}, state="queued") == {b.id}
    assert ids(params_match={"pacs_patient_id": "P3"}) == set()
    assert ids(params_match={"no_such_key": "P1"}) == set()
    # A value that only looks like SQL or JSON is compared as a plain string.
    assert ids(params_match={"pacs_patient_id": "P1' OR '1'='1"}) == set()
    assert ids(params_match={}) == ids()


def test_counts_cover_every_state(js):
    assert set(js.counts().values()) == {0} and set(js.counts()) == set(JobState)
    js.submit("fetch", {"patient": "P1"})
    js.submit("fetch", {"patient": "P2"})
    claimed = js.claim("w1", ["fetch"], LEASE)
    js.succeed(claimed.id, "w1")

    counts = js.counts()

    assert counts[JobState.QUEUED] == 1 and counts[JobState.SUCCEEDED] == 1
    assert sum(counts.values()) == 2


def test_prune_deletes_old_finished_jobs_with_their_events_only(js, clock, engine):
    old_ids = []
    for n in range(7):  # more than one batch of 3
        job, _ = js.submit("fetch", {"n": n})
        js.claim("w1", ["fetch"], LEASE)
        old_ids.append(js.succeed(job.id, "w1").id)
    cancelled, _ = js.submit("fetch", {"n": "cancelled"})
    js.request_cancel(cancelled.id)  # queued: cancelled at once
    still_queued, _ = js.submit("other", {"n": "queued"})  # old, but not finished
    clock.advance(200 * 86400)
    recent, _ = js.submit("fetch", {"n": "recent"})
    js.claim("w1", ["fetch"], LEASE)
    js.succeed(recent.id, "w1")

    deleted = js.prune(clock.now - timedelta(days=180), batch=3)

    assert deleted == 8
    left = {j.id for j in js.list(limit=100)}
    assert left == {still_queued.id, recent.id}
    for job_id in old_ids:
        with pytest.raises(JobNotFound):
            js.get(job_id)
    with engine.connect() as conn:
        orphans = conn.execute(
            sa.text("SELECT count(*) FROM job_event WHERE job_id NOT IN (SELECT id FROM job)")
        ).scalar()
    assert orphans == 0
    assert js.events(recent.id)  # a recent job keeps its history
    assert js.prune(clock.now - timedelta(days=180)) == 0


def test_interactive_jobs_are_claimed_before_older_background_ones(js, clock):
    old_background, _ = js.submit("fetch", {"n": 1}, priority=BACKGROUND)
    clock.advance(1)
    asked, _ = js.submit("fetch", {"n": 2})
    assert js.claim("w1", ["fetch"], LEASE).id == asked.id
    # A reserved worker takes nothing but interactive work.
    assert js.claim("w2", ["fetch"], LEASE, max_priority=INTERACTIVE) is None
    assert js.claim("w2", ["fetch"], LEASE).id == old_background.id


def test_asking_for_what_a_background_job_has_queued_makes_it_interactive(js):
    queued, _ = js.submit("fetch", {"n": 1}, dedupe_key="P1", priority=BACKGROUND)
    again, created = js.submit("fetch", {"n": 1}, dedupe_key="P1")
    assert not created and again.id == queued.id
    assert js.get(queued.id).priority == INTERACTIVE
    # The other way round never slows a person's job down.
    js.submit("fetch", {"n": 1}, dedupe_key="P1", priority=BACKGROUND)
    assert js.get(queued.id).priority == INTERACTIVE
