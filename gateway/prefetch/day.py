"""One day's prefetch: the patients of the day's appointments in R4, and one background
fetch for each of their recent studies, kept until the appointment has passed.

Invariants:
- Only patients with an appointment that day (not cancelled, not archived) are fetched, by
  their R4 patient id, through matching like any fetch: a study that needs a person goes to
  the review queue now, not while the patient sits in the chair.
- The fetches are jobs.BACKGROUND: whatever a person asks for is claimed first. The same
  patient asked for again (a repeated pass, a clinician) joins the active job.
- What is in the store already is not fetched again (a fetch asks only for missing images).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from sqlalchemy import Engine

import jobs
from gateway.core.settings import Settings
from gateway.fetch.request import FetchRequest
from r4.appointments import MAX_APPOINTMENTS, appointments_between

# Who the audit trail and the log name for a prefetch's fetches.
PREFETCH_ACTOR = "prefetch"

Submit = Callable[..., tuple[jobs.Job, bool]]


class PrefetchUnavailable(LookupError):
    """Prefetch cannot run here (no R4, or its appointments are not mapped): the message
    says what to set."""


@dataclass(frozen=True)
class Planned:
    """One patient of the day: when they come, and the fetch their studies need."""

    r4_patient_id: int
    starts_at: datetime
    request: FetchRequest


def plan_day(settings: Settings, r4: Engine | None, day: date) -> list[Planned]:
    """Who comes in on `day` and what to fetch for each, earliest first.

    Raises PrefetchUnavailable."""
    if r4 is None:
        raise PrefetchUnavailable("Prefetch reads R4's appointments: set [r4] first.")
    try:
        appointments = appointments_between(r4, day, day)
    except LookupError as exc:  # AppointmentsNotMapped: its sentence says what to set
        raise PrefetchUnavailable(str(exc)) from None
    keep = day + timedelta(days=settings.prefetch.keep_prefetched_days)
    return [
        Planned(
            a.patient_id,
            a.starts_at,
            recent_studies(settings, a.patient_id, day).model_copy(update={"keep_until": keep}),
        )
        for a in appointments
    ]


def recent_studies(settings: Settings, r4_patient_id: int, day: date) -> FetchRequest:
    """The fetch of a patient's studies of the `years_back` years up to `day`, of the
    prefetch's modalities."""
    rules = settings.prefetch
    return FetchRequest(
        r4_patient_id=str(r4_patient_id),
        date_from=_years_before(day, rules.years_back),
        date_to=day,
        modalities=list(rules.modalities),
    )


class PatientState(StrEnum):
    WAITING = "waiting"  # no prefetch asked for yet
    FETCHING = "fetching"
    READY = "ready"
    NEEDS_REVIEW = "needs_review"
    NOT_FETCHED = "not_fetched"


_STATE_OF_JOB = {
    jobs.JobState.QUEUED: PatientState.FETCHING,
    jobs.JobState.RUNNING: PatientState.FETCHING,
    jobs.JobState.WAITING_RETRY: PatientState.FETCHING,
    jobs.JobState.SUCCEEDED: PatientState.READY,
    jobs.JobState.NEEDS_REVIEW: PatientState.NEEDS_REVIEW,
    jobs.JobState.FAILED: PatientState.NOT_FETCHED,
    jobs.JobState.CANCELLED: PatientState.NOT_FETCHED,
}


@dataclass(frozen=True)
class PatientDay:
    """One patient of a day, and where their prefetch stands."""

    planned: Planned
    state: PatientState
    job: jobs.Job | None


def day_status(job_store: jobs.JobStore, planned: list[Planned]) -> list[PatientDay]:
    """Each planned patient with the newest prefetch job for that day (found by the job's
    patient and keep-until date), or none yet. One read of the job table for the day, not
    one per patient: the dashboard asks on every load."""
    newest: dict[str, jobs.Job] = {}
    for keep_until in {str(one.request.keep_until) for one in planned}:
        for job in job_store.list(
            kind="fetch", params_match={"keep_until": keep_until}, limit=MAX_APPOINTMENTS * 4
        ):  # newest first: the first job seen for a patient is theirs
            newest.setdefault(str(job.params.get("r4_patient_id")), job)
    days = []
    for one in planned:
        job = newest.get(one.request.r4_patient_id or "")
        state = PatientState.WAITING if job is None else _STATE_OF_JOB[job.state]
        if state is PatientState.READY and (job and job.progress.get("studies_in_review")):
            state = PatientState.NEEDS_REVIEW  # fetched what it could; a person decides the rest
        days.append(PatientDay(one, state, job))
    return days


def summary(day: date, days: list[PatientDay]) -> str:
    """ "Tue 8 Dec: 38 patients — 35 ready, 2 need review, 1 could not be fetched"."""
    counts = {state: sum(1 for d in days if d.state is state) for state in PatientState}
    parts = [
        f"{counts[state]} {words}"
        for state, words in (
            (PatientState.READY, "ready"),
            (PatientState.FETCHING, "being fetched"),
            (PatientState.NEEDS_REVIEW, "need review"),
            (PatientState.NOT_FETCHED, "could not be fetched"),
            (PatientState.WAITING, "not asked for yet"),
        )
        if counts[state]
    ]
    head = f"{day:%a} {day.day} {day:%b}: {len(days)} patient{'s' if len(days) != 1 else ''}"
    return f"{head} \N{EM DASH} {', '.join(parts)}" if parts else head


def prefetch_day(submit: Submit, planned: list[Planned]) -> list[tuple[Planned, jobs.Job]]:
    """Queue the planned fetches as background work; each with its job (new or joined)."""
    return [
        (one, submit(one.request, key_name=PREFETCH_ACTOR, priority=jobs.BACKGROUND)[0])
        for one in planned
    ]


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)
