"""Remembered patient links: PACS (PatientID, IssuerOfPatientID) -> R4 patient id.

Made by staff resolving a review item, through the API, or imported from CSV. The matcher
reads them first (`gateway.matching.LinkLookup`). One PACS id within one issuer belongs to at
most one R4 patient; one R4 patient may have several PACS ids (practice and outside ids).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from gateway.core.models import patient_link
from gateway.review.errors import LinkConflict
from gateway.review.records import PatientLink
from gateway.review.transactions import now, reading, utc, writing
from pacs.models import literal_problem

PACS_ID_MAX = 64
ISSUER_MAX = 64
# R4 keys patients with a 32-bit integer; anything larger is no R4 patient.
R4_ID_MAX = 2**31 - 1


def link_field_problem(pacs_patient_id: str, issuer: str, r4_patient_id: int) -> str | None:
    """Why these fields cannot make a link (a sentence without the values), or None."""
    if not pacs_patient_id.strip() or len(pacs_patient_id.strip()) > PACS_ID_MAX:
        return f"the PACS patient id must have 1 to {PACS_ID_MAX} characters"
    if problem := literal_problem(pacs_patient_id):
        return f"the PACS patient id {problem}"
    if len(issuer.strip()) > ISSUER_MAX:
        return f"the issuer must have at most {ISSUER_MAX} characters"
    if issuer.strip() and (problem := literal_problem(issuer)):
        return f"the issuer {problem}"
    if not 1 <= r4_patient_id <= R4_ID_MAX:
        return "the R4 patient id must be a positive whole number"
    return None


class PatientLinks:
    """The `patient_link` table. Implements gateway.matching.LinkLookup."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- the matcher's view ------------------------------------------------------------------

    def r4_patient_for(self, pacs_patient_id: str, issuer: str) -> int | None:
        with reading(self.engine) as conn:
            return conn.execute(
                sa.select(patient_link.c.r4_patient_id).where(
                    patient_link.c.pacs_patient_id == pacs_patient_id.strip(),
                    patient_link.c.issuer == issuer.strip(),
                )
            ).scalar_one_or_none()

    def pacs_ids_for(self, r4_patient_id: int) -> list[tuple[str, str]]:
        """(PatientID, issuer) of every PACS id linked to this R4 patient, oldest link first."""
        with reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(patient_link.c.pacs_patient_id, patient_link.c.issuer)
                .where(patient_link.c.r4_patient_id == r4_patient_id)
                .order_by(patient_link.c.id)
            ).all()
        return [(r.pacs_patient_id, r.issuer) for r in rows]

    # -- reading -----------------------------------------------------------------------------

    def get(self, link_id: int, *, conn: sa.Connection | None = None) -> PatientLink | None:
        with reading(self.engine, conn) as c:
            row = c.execute(sa.select(patient_link).where(patient_link.c.id == link_id)).first()
        return _link(row) if row is not None else None

    def find(
        self, pacs_patient_id: str, issuer: str, *, conn: sa.Connection | None = None
    ) -> PatientLink | None:
        with reading(self.engine, conn) as c:
            row = c.execute(
                sa.select(patient_link).where(
                    patient_link.c.pacs_patient_id == pacs_patient_id.strip(),
                    patient_link.c.issuer == issuer.strip(),
                )
            ).first()
        return _link(row) if row is not None else None

    def list(
        self,
        *,
        r4_patient_id: int | None = None,
        pacs_patient_id: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> list[PatientLink]:
        """Newest first."""
        query = sa.select(patient_link).order_by(patient_link.c.id.desc())
        if r4_patient_id is not None:
            query = query.where(patient_link.c.r4_patient_id == r4_patient_id)
        if pacs_patient_id is not None:
            query = query.where(patient_link.c.pacs_patient_id == pacs_patient_id.strip())
        with reading(self.engine) as conn:
            rows = conn.execute(query.offset(offset).limit(limit)).all()
        return [_link(r) for r in rows]

    # -- changing (audited by gateway.review.actions, in the same transaction) ---------------

    def link(
        self,
        pacs_patient_id: str,
        issuer: str,
        r4_patient_id: int,
        *,
        actor: str,
        source: str,
        review_item_id: int | None = None,
        conn: sa.Connection | None = None,
    ) -> tuple[PatientLink, bool]:
        """The link, and whether it is new. The same link again changes nothing (False).

        Raises LinkConflict when the PACS id is linked to another R4 patient, ValueError for
        fields no link can have. A concurrent insert of the same PACS id surfaces as
        IntegrityError: the caller's transaction is then void, and trying again decides."""
        problem = link_field_problem(pacs_patient_id, issuer, r4_patient_id)
        if problem:
            raise ValueError(problem)
        pacs_patient_id, issuer = pacs_patient_id.strip(), issuer.strip()
        with writing(self.engine, conn) as tx:
            existing = self.find(pacs_patient_id, issuer, conn=tx)
            if existing is not None:
                if existing.r4_patient_id != r4_patient_id:
                    raise LinkConflict(existing.id)
                return existing, False
            values: dict[str, Any] = {
                "pacs_patient_id": pacs_patient_id,
                "issuer": issuer,
                "r4_patient_id": r4_patient_id,
                "source": source,
                "review_item_id": review_item_id,
                "created_at": now(),
                "created_by": actor,
            }
            link_id = tx.execute(patient_link.insert().values(**values)).inserted_primary_key[0]
        return PatientLink(id=int(link_id), **values), True

    def delete(self, link_id: int, *, conn: sa.Connection | None = None) -> PatientLink | None:
        """Remove the link; returns it, or None if there was none."""
        with writing(self.engine, conn) as tx:
            found = self.get(link_id, conn=tx)
            if found is not None:
                tx.execute(patient_link.delete().where(patient_link.c.id == link_id))
        return found


def audit_view(link: PatientLink) -> dict[str, Any]:
    """What the audit trail keeps of a link."""
    return {
        "pacs_patient_id": link.pacs_patient_id,
        "issuer": link.issuer,
        "r4_patient_id": link.r4_patient_id,
        "source": link.source,
        "review_item_id": link.review_item_id,
    }


def _link(row: sa.Row) -> PatientLink:
    created_at = utc(row.created_at)
    assert created_at is not None
    return PatientLink(
        id=row.id,
        pacs_patient_id=row.pacs_patient_id,
        issuer=row.issuer,
        r4_patient_id=row.r4_patient_id,
        source=row.source,
        created_at=created_at,
        created_by=row.created_by,
        review_item_id=row.review_item_id,
    )
