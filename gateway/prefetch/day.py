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

from sqlalchemy import Engine

import jobs
from gateway.core.settings import Settings
from gateway.fetch.request import FetchRequest
from r4.appointments import appointments_between

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
    rules = settings.prefetch
    first = _years_before(day, rules.years_back)
    keep = day + timedelta(days=rules.keep_prefetched_days)
    return [
        Planned(
            a.patient_id,
            a.starts_at,
            FetchRequest(
                r4_patient_id=str(a.patient_id),
                date_from=first,
                date_to=day,
                modalities=list(rules.modalities),
                keep_until=keep,
            ),
        )
        for a in appointments
    ]


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
