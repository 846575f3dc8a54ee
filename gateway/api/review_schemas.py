"""Bodies of the review, link and audit routes. Every field has a description: the OpenAPI
document is the reference for them."""

from __future__ import annotations

import datetime as dt
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.api.schemas import API
from gateway.review import (
    AuditEvent,
    PatientLink,
    ReviewCandidate,
    ReviewItem,
    ReviewOrigin,
    ReviewState,
)
from gateway.review.actions import DISMISS_REASON_MAX
from gateway.review.link_import import ImportReport, ImportRow, RowOutcome
from gateway.review.links import ISSUER_MAX, PACS_ID_MAX, R4_ID_MAX
from pacs.models import require_literal


class StateFilter(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"
    ALL = "all"


# -- requests ------------------------------------------------------------------------------


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    r4_patient_id: int = Field(
        ge=1,
        le=R4_ID_MAX,
        description="The R4 patient the study belongs to (one of the candidates, or another "
        "patient found in R4). The PACS patient id is linked to this patient from now on.",
    )


class DismissRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: str = Field(
        min_length=1,
        max_length=DISMISS_REASON_MAX,
        description="Why the study is not linked to any R4 patient (kept in the audit trail).",
    )


class LinkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    pacs_patient_id: str = Field(
        min_length=1, max_length=PACS_ID_MAX, description="PatientID on the PACS."
    )
    issuer: str = Field(
        "",
        max_length=ISSUER_MAX,
        description="IssuerOfPatientID on the PACS; empty when the PACS sends none.",
    )
    r4_patient_id: int = Field(
        ge=1, le=R4_ID_MAX, description="The R4 patient this PACS id belongs to."
    )

    @field_validator("pacs_patient_id", "issuer")
    @classmethod
    def _literal(cls, value: str) -> str:
        # A wildcard in a link would tie every matching PACS patient to one R4 patient.
        return require_literal("the value", value) if value else value


# -- review items --------------------------------------------------------------------------


class R4PatientOut(BaseModel):
    family_name: str | None = Field(None, description="Family name in R4.")
    given_name: str | None = Field(None, description="Given name(s) in R4.")
    birth_date: str | None = Field(None, description="Birth date in R4 (YYYY-MM-DD).")
    sex: str | None = Field(None, description="Sex in R4: M, F, O, or null.")
    chart_number: str | None = Field(None, description="The practice's chart number.")


class CandidateOut(BaseModel):
    r4_patient_id: int = Field(description="The R4 patient proposed.")
    score: float = Field(description="Demographic score, 0 to 1 (1: everything agrees).")
    reasons: list[str] = Field(description="How the score came about, one sentence each.")
    birth_date_match: str = Field(
        description="exact, day_month_swapped, missing (on either side) or different."
    )
    sex_match: str = Field(description="same, unknown or different.")
    names_swapped: bool = Field(description="True when given and family name were swapped.")
    via: str | None = Field(
        None, description="link or id_rule when one of those pointed here, else null."
    )
    patient: R4PatientOut = Field(description="The R4 patient as staff see them.")

    @classmethod
    def of(cls, candidate: ReviewCandidate) -> CandidateOut:
        known = set(R4PatientOut.model_fields)
        return cls(
            r4_patient_id=candidate.r4_patient_id,
            score=candidate.score,
            reasons=list(candidate.reasons),
            birth_date_match=candidate.birth_date_match,
            sex_match=candidate.sex_match,
            names_swapped=candidate.names_swapped,
            via=candidate.via,
            patient=R4PatientOut.model_validate(
                {k: v for k, v in candidate.display.items() if k in known}
            ),
        )


class PacsPatientOut(BaseModel):
    patient_id: str = Field(description="PatientID on the PACS.")
    issuer: str = Field(description="IssuerOfPatientID; empty when the PACS sent none.")
    name: str = Field(description="PatientName as DICOM PN text (Family^Given^Middle...).")
    birth_date: str | None = Field(None, description="PatientBirthDate (YYYY-MM-DD), if sent.")
    sex: str = Field(description="PatientSex as sent (M, F, O or empty).")
    other_ids: list[str] = Field(description="OtherPatientIDs as sent.")


class ReviewItemLinks(BaseModel):
    self: str = Field(description="This item in the API.")
    resolve: str = Field(description="POST here to link the study to an R4 patient.")
    dismiss: str = Field(description="POST here to close the item without a link.")
    reopen: str | None = Field(
        None,
        description="POST here to put a dismissed item back in the queue; null unless the "
        "item is dismissed.",
    )
    job: str | None = Field(None, description="The job that found the study, if any.")
    follow_up_job: str | None = Field(
        None, description="The fetch job queued when the item was resolved, if any."
    )


class ReviewItemOut(BaseModel):
    id: int = Field(description="The review item's id.")
    state: ReviewState = Field(description="open, resolved or dismissed.")
    origin: ReviewOrigin = Field(
        description="fetch (found under the patient's id-rule or linked id, which did not "
        "settle it: the demographics contradict the id rule, or the study is from another "
        "issuer of patient ids), name_query "
        "(found by name and birth date under an unlinked id) or push (sent to the gateway "
        "unasked; the files are already here)."
    )
    pacs: str | None = Field(None, description="The PACS holding the study, if known.")
    study_uid: str = Field(description="Study Instance UID.")
    study_date: dt.date | None = Field(None, description="Study date, if the PACS gave one.")
    study_description: str = Field(description="Study description from the PACS.")
    modalities: list[str] = Field(description="Modalities in the study.")
    instance_count: int | None = Field(None, description="Images in the study, if known.")
    pacs_patient: PacsPatientOut = Field(description="The patient as the PACS files the study.")
    why: list[str] = Field(
        description="Why it needs a person, as codes: no_candidate, below_threshold, "
        "several_above_threshold, margin_too_small, possible_twin, possible_namesake, "
        "found_by_name (found by name and birth date under an unlinked PACS id), "
        "issuer_differs (found under a linked PACS id, but from another issuer of patient "
        "ids), ... Never empty."
    )
    reasons: list[str] = Field(description="The same, as sentences for people.")
    candidates: list[CandidateOut] = Field(description="R4 patients proposed, best first.")
    created_at: datetime = Field(description="Since when it waits (UTC).")
    closed_at: datetime | None = Field(None, description="When it was resolved or dismissed.")
    closed_by: str | None = Field(None, description="The API key name that closed it.")
    resolved_r4_patient_id: int | None = Field(
        None, description="The R4 patient it was linked to, once resolved."
    )
    dismiss_reason: str | None = Field(None, description="Why it was dismissed, if it was.")
    job_id: str | None = Field(None, description="The job that found the study, if any.")
    follow_up_job_id: str | None = Field(
        None,
        description="The fetch job for exactly this study, queued when it was resolved "
        "(none for pushed studies, which are attached from the store).",
    )
    resolved_siblings: list[int] = Field(
        default_factory=list,
        description="Only in the answer to a resolve: the ids of the other open items of the "
        "same PACS patient (same PACS, patient id and issuer) that this decision resolved "
        "too, to the same R4 patient. Their studies are fetched in the same follow-up job "
        "(pushed ones are attached); each has its own review.resolve audit event.",
    )
    links: ReviewItemLinks = Field(description="Related addresses.")

    @classmethod
    def of(cls, item: ReviewItem) -> ReviewItemOut:
        base = f"{API}/review/{item.id}"
        patient = item.pacs_patient
        return cls(
            id=item.id,
            state=item.state,
            origin=item.origin,
            pacs=item.pacs_name,
            study_uid=item.study_uid,
            study_date=item.study_date,
            study_description=item.study_description,
            modalities=list(item.modalities),
            instance_count=item.instance_count,
            pacs_patient=PacsPatientOut(
                patient_id=str(patient.get("patient_id") or ""),
                issuer=str(patient.get("issuer") or ""),
                name=str(patient.get("name") or ""),
                birth_date=patient.get("birth_date"),
                sex=str(patient.get("sex") or ""),
                other_ids=[str(i) for i in patient.get("other_ids") or ()],
            ),
            why=list(item.why),
            reasons=list(item.reasons),
            candidates=[CandidateOut.of(c) for c in item.candidates],
            created_at=item.created_at,
            closed_at=item.closed_at,
            closed_by=item.closed_by,
            resolved_r4_patient_id=item.resolved_r4_patient_id,
            dismiss_reason=item.dismiss_reason,
            job_id=item.job_id,
            follow_up_job_id=item.follow_up_job_id,
            resolved_siblings=list(item.resolved_siblings),
            links=ReviewItemLinks(
                self=base,
                resolve=f"{base}/resolve",
                dismiss=f"{base}/dismiss",
                reopen=f"{base}/reopen" if item.state is ReviewState.DISMISSED else None,
                job=f"{API}/jobs/{item.job_id}" if item.job_id else None,
                follow_up_job=f"{API}/jobs/{item.follow_up_job_id}"
                if item.follow_up_job_id
                else None,
            ),
        )


class ReviewList(BaseModel):
    items: list[ReviewItemOut] = Field(
        description="Matching items: open ones oldest first, otherwise newest first."
    )
    total: int = Field(description="How many items are in this state altogether.")
    limit: int = Field(description="Most items returned in one page.")
    offset: int = Field(description="Items skipped before this page.")


# -- links ---------------------------------------------------------------------------------


class LinkOut(BaseModel):
    id: int = Field(description="The link's id.")
    pacs_patient_id: str = Field(description="PatientID on the PACS.")
    issuer: str = Field(description="IssuerOfPatientID; empty when the PACS sends none.")
    r4_patient_id: int = Field(description="The R4 patient it belongs to.")
    source: str = Field(description="How it was made: review, api or import.")
    review_item_id: int | None = Field(None, description="The review item it resolved, if any.")
    created_at: datetime = Field(description="When it was made (UTC).")
    created_by: str = Field(description="The API key name that made it.")
    self: str = Field(description="This link in the API.")

    @classmethod
    def of(cls, link: PatientLink) -> LinkOut:
        return cls(
            id=link.id,
            pacs_patient_id=link.pacs_patient_id,
            issuer=link.issuer,
            r4_patient_id=link.r4_patient_id,
            source=link.source,
            review_item_id=link.review_item_id,
            created_at=link.created_at,
            created_by=link.created_by,
            self=f"{API}/links/{link.id}",
        )


class LinkList(BaseModel):
    items: list[LinkOut] = Field(description="Matching links, newest first.")
    limit: int = Field(description="Most links returned in one page.")
    offset: int = Field(description="Links skipped before this page.")


class ImportRowOut(BaseModel):
    row: int = Field(description="Line number in the file (the header is line 1).")
    outcome: RowOutcome = Field(
        description="created, unchanged (the link existed already) or rejected."
    )
    link_id: int | None = Field(None, description="The link created or found, if any.")
    reason: str | None = Field(
        None, description="Why the row was rejected (or left unchanged), one phrase."
    )

    @classmethod
    def of(cls, row: ImportRow) -> ImportRowOut:
        return cls(row=row.row, outcome=row.outcome, link_id=row.link_id, reason=row.reason)


class ImportReportOut(BaseModel):
    created: int = Field(description="Rows that made a new link.")
    unchanged: int = Field(description="Rows whose link existed already.")
    rejected: int = Field(description="Rows refused; see their reasons under rows.")
    rows: list[ImportRowOut] = Field(description="Every data row's outcome, in file order.")

    @classmethod
    def of(cls, report: ImportReport) -> ImportReportOut:
        return cls(
            created=report.created,
            unchanged=report.unchanged,
            rejected=report.rejected,
            rows=[ImportRowOut.of(r) for r in report.rows],
        )


# -- audit ---------------------------------------------------------------------------------


class AuditEventOut(BaseModel):
    id: int = Field(description="The event's id (increasing).")
    at: datetime = Field(description="When it happened (UTC).")
    actor: str = Field(description="The name of the API key that did it.")
    action: str = Field(
        description="review.resolve, review.dismiss, review.reopen, link.create, link.delete "
        "or link.import."
    )
    subject: str = Field(description="What it was done to, e.g. review:12 or link:5.")
    before: dict[str, Any] | None = Field(None, description="The subject before; null if new.")
    after: dict[str, Any] | None = Field(None, description="The subject after; null if removed.")

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEventOut:
        return cls(
            id=event.id,
            at=event.at,
            actor=event.actor,
            action=event.action,
            subject=event.subject,
            before=event.before,
            after=event.after,
        )


class AuditList(BaseModel):
    items: list[AuditEventOut] = Field(description="Matching events, newest first.")
    limit: int = Field(description="Most events returned in one page.")
    offset: int = Field(description="Events skipped before this page.")
