"""The audit trail: every staff action on review items and patient links, append-only."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from gateway.core.models import audit_event
from gateway.review.records import AuditEvent
from gateway.review.transactions import now, reading, utc, writing


class AuditAction(StrEnum):
    REVIEW_RESOLVE = "review.resolve"
    REVIEW_DISMISS = "review.dismiss"
    REVIEW_REOPEN = "review.reopen"
    LINK_CREATE = "link.create"
    LINK_DELETE = "link.delete"
    LINK_IMPORT = "link.import"
    # Outside review, audited the same way.
    STUDY_RECEIVED = "study.received"  # a PACS or modality pushed a study unasked
    STUDY_REPLACED = "study.replaced"  # the PACS's differing copy replaced a stored file
    STUDY_REMOVED = "study.removed"  # staff or the storage limits took a study out
    STUDY_KEEP = "study.keep"  # staff marked a study to be kept (or no longer)
    AUTH_THROTTLED = "auth.throttled"  # an address sent too many wrong API keys: it waits


def review_subject(item_id: int) -> str:
    return f"review:{item_id}"


def link_subject(link_id: int) -> str:
    return f"link:{link_id}"


def study_subject(study_uid: str) -> str:
    return f"study:{study_uid}"


class AuditLog:
    """Events are only ever added: there is no update or delete."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record(
        self,
        actor: str,
        action: AuditAction | str,
        subject: str,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
        *,
        conn: sa.Connection | None = None,
    ) -> AuditEvent:
        """Add one event; with `conn`, inside the caller's transaction (so the event exists
        exactly when the change it describes does)."""
        values = {
            "at": now(),
            "actor": actor,
            "action": str(action),
            "subject": subject,
            "before": dict(before) if before is not None else None,
            "after": dict(after) if after is not None else None,
        }
        with writing(self.engine, conn) as tx:
            event_id = tx.execute(audit_event.insert().values(**values)).inserted_primary_key[0]
        return AuditEvent(id=int(event_id), **values)

    def list(
        self, *, offset: int = 0, limit: int = 50, subject: str | None = None
    ) -> list[AuditEvent]:
        """Newest first."""
        query = sa.select(audit_event).order_by(audit_event.c.id.desc())
        if subject is not None:
            query = query.where(audit_event.c.subject == subject)
        with reading(self.engine) as conn:
            rows = conn.execute(query.offset(offset).limit(limit)).all()
        return [_event(r) for r in rows]

    def count(self, *, subject: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(audit_event)
        if subject is not None:
            query = query.where(audit_event.c.subject == subject)
        with reading(self.engine) as conn:
            return int(conn.execute(query).scalar_one())


def _event(row: sa.Row) -> AuditEvent:
    at = utc(row.at)
    assert at is not None
    return AuditEvent(
        id=row.id,
        at=at,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        before=row.before,
        after=row.after,
    )
