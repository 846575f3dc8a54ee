"""What the review package hands out: review items with their candidates, links, audit events.

Plain frozen dataclasses; the tables behind them are in gateway.core.models.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any


class ReviewOrigin(StrEnum):
    """How a study came to need a person's decision."""

    # Found during a fetch under the patient's id-rule or linked id, which did not settle it:
    # the demographics contradict the id rule, or the study is from another issuer of ids.
    FETCH = "fetch"
    # Found by name + birth date under a PACS id not linked to the patient.
    NAME_QUERY = "name_query"
    # Sent unsolicited to the Storage SCP: the files are already in the store.
    PUSH = "push"


class ReviewState(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"


@dataclass(frozen=True)
class ReviewCandidate:
    """One R4 patient the matcher proposed, with its score and the evidence for it."""

    r4_patient_id: int
    score: float
    reasons: tuple[str, ...]
    birth_date_match: str
    sex_match: str
    names_swapped: bool
    via: str | None
    # The R4 side shown to staff: family_name, given_name, birth_date (ISO), sex, chart_number.
    display: dict[str, str | None]


@dataclass(frozen=True)
class ReviewItem:
    """A study waiting for (or given) a person's decision about whose it is."""

    id: int
    state: ReviewState
    origin: ReviewOrigin
    pacs_name: str | None
    study_uid: str
    study_date: date | None
    study_description: str
    modalities: tuple[str, ...]
    instance_count: int | None
    # patient_id, issuer, name (DICOM PN text), birth_date (ISO or None), sex, other_ids.
    pacs_patient: dict[str, Any]
    why: tuple[str, ...]  # gateway.matching.ReviewReason values
    reasons: tuple[str, ...]  # sentences for staff
    candidates: tuple[ReviewCandidate, ...]
    job_id: str | None
    created_at: datetime
    closed_at: datetime | None
    closed_by: str | None
    resolved_r4_patient_id: int | None
    dismiss_reason: str | None
    follow_up_job_id: str | None
    # Set on the item a resolve answers with: the other open items of the same PACS patient
    # that the same decision closed (their audit events name this item). Not stored.
    resolved_siblings: tuple[int, ...] = ()

    @property
    def is_open(self) -> bool:
        return self.state is ReviewState.OPEN

    @property
    def pacs_patient_id(self) -> str:
        return str(self.pacs_patient.get("patient_id") or "")

    @property
    def issuer(self) -> str:
        return str(self.pacs_patient.get("issuer") or "")


@dataclass(frozen=True)
class PatientLink:
    """A remembered decision: this PACS patient id (within its issuer) is this R4 patient."""

    id: int
    pacs_patient_id: str
    issuer: str
    r4_patient_id: int
    source: str  # "review", "api" or "import"
    created_at: datetime
    created_by: str
    review_item_id: int | None = None


@dataclass(frozen=True)
class AuditEvent:
    """One staff action: who (the API key's name), when, what, on what, and the change."""

    id: int
    at: datetime
    actor: str
    # review.resolve, review.dismiss, review.reopen, link.create, link.delete, link.import
    action: str
    subject: str  # e.g. "review:12", "link:5"
    before: dict[str, Any] | None
    after: dict[str, Any] | None
