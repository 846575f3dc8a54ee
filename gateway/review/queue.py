"""The review queue: studies whose patient no rule could decide, kept until a person does.

An item is never deleted: it is resolved (linked to an R4 patient) or dismissed with a reason,
and stays as the record of that decision. A dismissal holds: the same study found or pushed
again is answered with the dismissed item, not queued anew, until staff reopen it (or link its
PACS patient, after which the matcher assigns it and it is not queued at all).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from typing import Any

import sqlalchemy as sa

from gateway.core.models import review_item
from gateway.matching import Candidate, MatchDecision
from gateway.review.errors import (
    ReviewAlreadyQueued,
    ReviewClosed,
    ReviewNotDismissed,
    ReviewNotFound,
)
from gateway.review.records import ReviewCandidate, ReviewItem, ReviewOrigin, ReviewState
from gateway.review.transactions import now, reading, utc, writing
from pacs.models import PacsPatient, PersonName, Study

Display = Mapping[str, str | None]
_DESCRIPTION_MAX = 255


class ReviewQueue:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- adding ------------------------------------------------------------------------------

    def add(
        self,
        *,
        origin: ReviewOrigin | str,
        pacs_name: str | None,
        patient: PacsPatient,
        study: Study,
        decision: MatchDecision,
        details: Mapping[int, Display],
        job_id: str | None = None,
    ) -> tuple[ReviewItem, bool]:
        """Queue `study` for review; while an item for the same (pacs_name, study_uid) is open,
        that item is returned instead, with False. So is a dismissed one: staff rejected the
        study, and finding or receiving it again does not ask them twice (once staff link its
        PACS patient, fetches and pushes assign it without the queue).

        `decision` must be a review decision: an item always says why it needs a person
        (ValueError for a decision without review reasons, such as an automatic link).
        `details[r4_id]` is what staff see of each candidate (PatientDirectory.display)."""
        if not decision.needs_review or not decision.review_reasons:
            raise ValueError(
                "only a review decision with its reasons can be queued; an automatic link, "
                "or a decision that does not say why a person must decide, cannot"
            )
        key = _open_key(pacs_name, study.study_uid)
        existing = self._open_by_key(key)
        if existing is not None:
            return existing, False
        dismissed = self._dismissed(pacs_name, study.study_uid)
        if dismissed is not None:
            return dismissed, False
        values = {
            "state": ReviewState.OPEN.value,
            "origin": ReviewOrigin(origin).value,
            "pacs_name": pacs_name,
            "study_uid": study.study_uid,
            "open_key": key,
            "study_date": study.study_date,
            "study_description": (study.description or "")[:_DESCRIPTION_MAX],
            "modalities": sorted(set(study.modalities)),
            "instance_count": study.number_of_instances,
            "pacs_patient": pacs_patient_fields(patient),
            "why": [str(w) for w in decision.review_reasons],
            "reasons": list(decision.reasons),
            "candidates": [
                _candidate_json(c, details.get(c.r4_patient_id)) for c in decision.candidates
            ],
            "job_id": job_id,
            "created_at": now(),
        }
        try:
            with writing(self.engine) as conn:
                item_id = conn.execute(review_item.insert().values(**values)).inserted_primary_key[
                    0
                ]
        except sa.exc.IntegrityError:
            # Another thread queued the same study between our look and our insert.
            existing = self._open_by_key(key)
            if existing is None:
                raise
            return existing, False
        item = self.get(int(item_id))
        assert item is not None
        return item, True

    # -- reading -----------------------------------------------------------------------------

    def get(self, item_id: int, *, conn: sa.Connection | None = None) -> ReviewItem | None:
        with reading(self.engine, conn) as c:
            row = c.execute(sa.select(review_item).where(review_item.c.id == item_id)).first()
        return _item(row) if row is not None else None

    def list(
        self, *, state: ReviewState | None = ReviewState.OPEN, offset: int = 0, limit: int = 50
    ) -> list[ReviewItem]:
        """Open items oldest first (the order to work through them); closed ones, or all
        (state None), newest first."""
        query = sa.select(review_item)
        if state is None:
            query = query.order_by(review_item.c.id.desc())
        else:
            order = review_item.c.id if state is ReviewState.OPEN else review_item.c.id.desc()
            query = query.where(review_item.c.state == ReviewState(state).value).order_by(order)
        with reading(self.engine) as conn:
            rows = conn.execute(query.offset(offset).limit(limit)).all()
        return [_item(r) for r in rows]

    def count(self, state: ReviewState | None = ReviewState.OPEN) -> int:
        query = sa.select(sa.func.count()).select_from(review_item)
        if state is not None:
            query = query.where(review_item.c.state == ReviewState(state).value)
        with reading(self.engine) as conn:
            return int(conn.execute(query).scalar_one())

    def open_siblings(
        self, item: ReviewItem, *, conn: sa.Connection | None = None
    ) -> list[ReviewItem]:
        """The other open items of the item's PACS patient: same PACS, PatientID and issuer,
        oldest first. None for an item without a PatientID (that is no identity to share)."""
        if not item.pacs_patient_id.strip():
            return []
        query = (
            sa.select(review_item)
            .where(
                review_item.c.state == ReviewState.OPEN.value,
                review_item.c.id != item.id,
                _same_pacs(item.pacs_name),
            )
            .order_by(review_item.c.id)
        )
        with reading(self.engine, conn) as c:
            rows = c.execute(query).all()
        # PatientID and issuer live in a JSON column: compared here, the same way on every
        # database. The open items of one PACS are few.
        return [
            sibling
            for sibling in map(_item, rows)
            if sibling.pacs_patient_id.strip() == item.pacs_patient_id.strip()
            and sibling.issuer.strip() == item.issuer.strip()
        ]

    def open_for_study(self, study_uid: str) -> ReviewItem | None:
        """The open item for this study (from any PACS), if there is one."""
        query = (
            sa.select(review_item)
            .where(
                review_item.c.study_uid == study_uid,
                review_item.c.state == ReviewState.OPEN.value,
            )
            .order_by(review_item.c.id)
            .limit(1)
        )
        with reading(self.engine) as conn:
            row = conn.execute(query).first()
        return _item(row) if row is not None else None

    # -- closing (inside the caller's transaction: see gateway.review.resolution) ------------

    def close(
        self,
        conn: sa.Connection,
        item_id: int,
        *,
        state: ReviewState,
        actor: str,
        r4_patient_id: int | None = None,
        reason: str | None = None,
    ) -> tuple[ReviewItem, ReviewItem]:
        """Mark an open item resolved or dismissed; returns (before, after).

        Raises ReviewNotFound, ReviewClosed (also when a concurrent action closed it first:
        the update only applies to a row still open)."""
        before = self.get(item_id, conn=conn)
        if before is None:
            raise ReviewNotFound()
        if not before.is_open:
            raise _closed(before)
        closed_at = now()
        changes: dict[str, Any] = {
            "state": ReviewState(state).value,
            "open_key": None,
            "closed_at": closed_at,
            "closed_by": actor,
            "resolved_r4_patient_id": r4_patient_id,
            "dismiss_reason": reason,
        }
        done = conn.execute(
            review_item.update()
            .where(review_item.c.id == item_id, review_item.c.state == ReviewState.OPEN.value)
            .values(**changes)
        )
        if done.rowcount != 1:
            latest = self.get(item_id, conn=conn)
            raise _closed(latest or before)
        after = replace(
            before,
            state=ReviewState(state),
            closed_at=closed_at,
            closed_by=actor,
            resolved_r4_patient_id=r4_patient_id,
            dismiss_reason=reason,
        )
        return before, after

    def reopen(self, conn: sa.Connection, item_id: int) -> tuple[ReviewItem, ReviewItem]:
        """Put a dismissed item back in the queue; returns (before, after).

        Raises ReviewNotFound, ReviewNotDismissed (open or resolved, or changed by a
        concurrent action first), ReviewAlreadyQueued (another open item holds the study: one
        queued before dismissals held). A concurrent add of the same study surfaces as
        IntegrityError: trying again decides."""
        before = self.get(item_id, conn=conn)
        if before is None:
            raise ReviewNotFound()
        if before.state is not ReviewState.DISMISSED:
            raise ReviewNotDismissed(before.state.value)
        key = _open_key(before.pacs_name, before.study_uid)
        holder = self._open_by_key(key, conn=conn)
        if holder is not None:
            raise ReviewAlreadyQueued(holder.id)
        changes: dict[str, Any] = {
            "state": ReviewState.OPEN.value,
            "open_key": key,
            "closed_at": None,
            "closed_by": None,
            "dismiss_reason": None,
        }
        done = conn.execute(
            review_item.update()
            .where(
                review_item.c.id == item_id,
                review_item.c.state == ReviewState.DISMISSED.value,
            )
            .values(**changes)
        )
        if done.rowcount != 1:
            latest = self.get(item_id, conn=conn)
            raise ReviewNotDismissed((latest or before).state.value)
        after = replace(
            before, state=ReviewState.OPEN, closed_at=None, closed_by=None, dismiss_reason=None
        )
        return before, after

    def set_follow_up(self, item_id: int, job_id: str) -> ReviewItem:
        """Remember the fetch job submitted for a resolved item."""
        with writing(self.engine) as conn:
            conn.execute(
                review_item.update()
                .where(review_item.c.id == item_id)
                .values(follow_up_job_id=job_id)
            )
        item = self.get(item_id)
        if item is None:
            raise ReviewNotFound()
        return item

    def _open_by_key(self, key: str, *, conn: sa.Connection | None = None) -> ReviewItem | None:
        with reading(self.engine, conn) as c:
            row = c.execute(sa.select(review_item).where(review_item.c.open_key == key)).first()
        return _item(row) if row is not None else None

    def _dismissed(self, pacs_name: str | None, study_uid: str) -> ReviewItem | None:
        """The latest dismissed item of this study on this PACS, if any."""
        query = (
            sa.select(review_item)
            .where(
                review_item.c.study_uid == study_uid,
                review_item.c.state == ReviewState.DISMISSED.value,
                _same_pacs(pacs_name),
            )
            .order_by(review_item.c.id.desc())
            .limit(1)
        )
        with reading(self.engine) as conn:
            row = conn.execute(query).first()
        return _item(row) if row is not None else None


def audit_view(item: ReviewItem) -> dict[str, Any]:
    """What the audit trail keeps of an item before and after an action."""
    return {
        "state": item.state.value,
        "study_uid": item.study_uid,
        "pacs_name": item.pacs_name,
        "pacs_patient_id": item.pacs_patient_id,
        "issuer": item.issuer,
        "resolved_r4_patient_id": item.resolved_r4_patient_id,
        "dismiss_reason": item.dismiss_reason,
        "closed_by": item.closed_by,
        "closed_at": item.closed_at.isoformat() if item.closed_at else None,
    }


def pacs_patient_fields(patient: PacsPatient) -> dict[str, Any]:
    return {
        "patient_id": patient.patient_id,
        "issuer": patient.issuer_of_patient_id,
        "name": person_name_text(patient.name),
        "birth_date": patient.birth_date.isoformat() if patient.birth_date else None,
        "sex": patient.sex,
        "other_ids": list(patient.other_patient_ids),
    }


def person_name_text(name: PersonName) -> str:
    """The DICOM PN text of a parsed name: family^given^middle^prefix^suffix, trailing empty
    components dropped."""
    parts = (name.family, name.given, name.middle, name.prefix, name.suffix)
    return "^".join(parts).rstrip("^")


def _open_key(pacs_name: str | None, study_uid: str) -> str:
    return f"{pacs_name or ''}|{study_uid}"


def _same_pacs(pacs_name: str | None) -> sa.ColumnElement[bool]:
    # The open key treats "no PACS" and "" alike; so do the lookups beside it.
    if not pacs_name:
        return sa.or_(review_item.c.pacs_name.is_(None), review_item.c.pacs_name == "")
    return review_item.c.pacs_name == pacs_name


def _closed(item: ReviewItem) -> ReviewClosed:
    return ReviewClosed(item.state.value, item.closed_at, item.closed_by)


def _candidate_json(candidate: Candidate, display: Display | None) -> dict[str, Any]:
    return {
        "r4_patient_id": candidate.r4_patient_id,
        "score": round(float(candidate.score), 4),
        "reasons": list(candidate.reasons),
        "birth_date_match": str(candidate.birth_date),
        "sex_match": str(candidate.sex),
        "names_swapped": candidate.names_swapped,
        "via": str(candidate.via) if candidate.via is not None else None,
        "display": dict(display or {}),
    }


def _candidate(data: Mapping[str, Any]) -> ReviewCandidate:
    return ReviewCandidate(
        r4_patient_id=int(data["r4_patient_id"]),
        score=float(data["score"]),
        reasons=tuple(data.get("reasons") or ()),
        birth_date_match=str(data.get("birth_date_match") or ""),
        sex_match=str(data.get("sex_match") or ""),
        names_swapped=bool(data.get("names_swapped")),
        via=data.get("via"),
        display=dict(data.get("display") or {}),
    )


def _item(row: sa.Row) -> ReviewItem:
    created_at = utc(row.created_at)
    assert created_at is not None
    study_date: date | None = row.study_date
    return ReviewItem(
        id=row.id,
        state=ReviewState(row.state),
        origin=ReviewOrigin(row.origin),
        pacs_name=row.pacs_name,
        study_uid=row.study_uid,
        study_date=study_date,
        study_description=row.study_description,
        modalities=tuple(row.modalities or ()),
        instance_count=row.instance_count,
        pacs_patient=dict(row.pacs_patient or {}),
        why=tuple(row.why or ()),
        reasons=tuple(row.reasons or ()),
        candidates=tuple(_candidate(c) for c in row.candidates or ()),
        job_id=row.job_id,
        created_at=created_at,
        closed_at=utc(row.closed_at),
        closed_by=row.closed_by,
        resolved_r4_patient_id=row.resolved_r4_patient_id,
        dismiss_reason=row.dismiss_reason,
        follow_up_job_id=row.follow_up_job_id,
    )
