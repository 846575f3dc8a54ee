"""Who saw what: fetches submitted and patient pages, studies, previews and DICOMweb
resources opened, in the same append-only audit trail as staff decisions.

Each event names who (the API key's name, or the practice-side command that asked), what
(`fetch.submit`, `view.job`, `view.study`, `view.preview`, `view.dicomweb`), on what, and the
patient it concerns by id only (`pacs_patient_id`, `r4_patient_id`): never a name or a birth
date. A viewer asks for one study hundreds of times (every frame); a key opening the same
thing again within `REPEAT_SECONDS` is recorded once, so the trail says who looked, not how
many frames they scrolled.
"""

from __future__ import annotations

import csv
import io
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from gateway.core.models import audit_event
from gateway.review.audit import AuditLog, _event
from gateway.review.records import AuditEvent
from gateway.review.transactions import reading

REPEAT_SECONDS = 300.0
_REMEMBERED = 4096
SUBMIT = "fetch.submit"
VIEW_ACTIONS = ("view.job", "view.study", "view.preview", "view.dicomweb")
PATIENT_KEYS = ("pacs_patient_id", "r4_patient_id")


class AccessAudit:
    """Records submissions and views; thread-safe (pages are served from a thread pool)."""

    def __init__(self, audit: AuditLog, clock: Callable[[], float] = time.monotonic) -> None:
        self.audit = audit
        self._clock = clock
        self._seen: OrderedDict[tuple[str, str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def submitted(self, actor: str, job_id: str, patient: Mapping[str, Any]) -> None:
        """A fetch asked for; `actor` is the key's name or e.g. "sqs:FetchStudies"."""
        self.audit.record(actor, SUBMIT, f"job:{job_id}", None, _patient(patient))

    def viewed(
        self,
        actor: str,
        action: str,
        subject: str,
        patient: Mapping[str, Any] | Callable[[], Mapping[str, Any] | None],
        **what: str,
    ) -> bool:
        """Record that `actor` opened `subject`; False when it was a repeat (not recorded), or
        when `patient` is a look-up (called only for an event to record) that finds nothing."""
        key = (actor, action, subject)
        now = self._clock()
        with self._lock:
            last = self._seen.get(key)
            if last is not None and now - last < REPEAT_SECONDS:
                return False
            self._seen[key] = now
            self._seen.move_to_end(key)
            while len(self._seen) > _REMEMBERED:
                self._seen.popitem(last=False)
        concerns = patient() if callable(patient) else patient
        if concerns is None:
            return False
        self.audit.record(actor, action, subject[:64], None, {**_patient(concerns), **what})
        return True


def _patient(patient: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(patient[k]) for k in PATIENT_KEYS if patient.get(k) not in (None, "")}


def find_events(
    audit: AuditLog,
    *,
    patient: str = "",
    actor: str = "",
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[AuditEvent], int]:
    """(events newest first, how many match): by the patient's PACS or R4 id, by key name."""
    table = audit_event
    where: list[sa.ColumnElement[bool]] = []
    if patient:
        where.append(
            sa.or_(
                *(table.c.after[k].as_string() == patient for k in PATIENT_KEYS),
                *(table.c.before[k].as_string() == patient for k in PATIENT_KEYS),
            )
        )
    if actor:
        where.append(table.c.actor == actor)
    query = sa.select(table).where(*where).order_by(table.c.id.desc())
    count = sa.select(sa.func.count()).select_from(table).where(*where)
    with reading(audit.engine) as conn:
        rows = conn.execute(query.offset(offset).limit(limit)).all()
        total = int(conn.execute(count).scalar_one())
    return [_event(r) for r in rows], total


def csv_text(events: Iterable[AuditEvent]) -> str:
    """The events as CSV: when (UTC, ISO 8601), who, what, on what, patient ids, details."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["at_utc", "who", "action", "subject", *PATIENT_KEYS, "details"])
    for e in events:
        after = e.after or {}
        before = e.before or {}
        ids = [str(after.get(k) or before.get(k) or "") for k in PATIENT_KEYS]
        details = "; ".join(
            f"{k}={after[k]}"
            for k in sorted(after)
            if k not in PATIENT_KEYS and after[k] is not None
        )
        writer.writerow(
            [
                e.at.isoformat(),
                _cell(e.actor),
                e.action,
                e.subject,
                *map(_cell, ids),
                _cell(details),
            ]
        )
    return out.getvalue()


def _cell(text: str) -> str:
    # A cell starting with = + - @ is a formula to a spreadsheet: keep it text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
