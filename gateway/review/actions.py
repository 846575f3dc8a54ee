"""Staff actions: each changes the queue and/or the links and writes its audit events in one
transaction, so the trail holds an event exactly when the change happened.

The R4 patient is checked by the caller (`check_r4_patient`) before any transaction starts:
R4 may be slow, and the gateway database should not be locked while it answers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

import sqlalchemy as sa

from gateway.review.audit import AuditAction, AuditLog, link_subject, review_subject
from gateway.review.errors import (
    LinkNotFound,
    R4Unavailable,
    ReviewClosed,
    ReviewNotFound,
    UnknownR4Patient,
)
from gateway.review.links import PatientLinks
from gateway.review.links import audit_view as link_view
from gateway.review.queue import ReviewQueue
from gateway.review.queue import audit_view as item_view
from gateway.review.records import PatientLink, ReviewItem, ReviewState
from gateway.review.transactions import in_transaction, writing

DISMISS_REASON_MAX = 500


class PatientLookup(Protocol):
    """What the actions need of gateway.practice.directory.PatientDirectory."""

    def get(self, r4_patient_id: int) -> object | None: ...


def check_open(queue: ReviewQueue, item_id: int) -> ReviewItem:
    """The item, if it is open; raises ReviewNotFound, ReviewClosed. (A cheap early answer:
    the action itself checks again inside its transaction.)"""
    item = queue.get(item_id)
    if item is None:
        raise ReviewNotFound()
    if not item.is_open:
        raise ReviewClosed(item.state.value, item.closed_at, item.closed_by)
    return item


def check_r4_patient(patients: PatientLookup, r4_patient_id: int) -> None:
    """Raises UnknownR4Patient unless R4 has this patient; R4Unavailable if R4 cannot say."""
    try:
        found = patients.get(r4_patient_id)
    except sa.exc.SQLAlchemyError as exc:
        # The exception's text may quote the query's parameters: its class name only.
        raise R4Unavailable(type(exc).__name__) from None
    except OverflowError:
        found = None
    if found is None:
        raise UnknownR4Patient()


def resolve(
    queue: ReviewQueue,
    links: PatientLinks,
    audit: AuditLog,
    item_id: int,
    r4_patient_id: int,
    actor: str,
) -> ReviewItem:
    """Link the item's PACS patient to `r4_patient_id` and mark it resolved, together with
    the other open items of the same PACS patient (`ReviewQueue.open_siblings`): the link is
    about the patient, so it decides their studies too.

    Audits `review.resolve` (before/after) for the item and for each sibling (its `after`
    names the item it followed from) and, when the link is new, `link.create`. The item
    returned lists the siblings closed in `resolved_siblings`. Raises ReviewNotFound,
    ReviewClosed, LinkConflict; nothing changes then."""

    def attempt(conn: sa.Connection) -> ReviewItem:
        before, after = queue.close(
            conn, item_id, state=ReviewState.RESOLVED, actor=actor, r4_patient_id=r4_patient_id
        )
        # An item without a PACS patient id has nothing to remember: it is only resolved.
        if before.pacs_patient_id.strip():
            link, created = links.link(
                before.pacs_patient_id,
                before.issuer,
                r4_patient_id,
                actor=actor,
                source="review",
                review_item_id=item_id,
                conn=conn,
            )
            if created:
                audit.record(
                    actor,
                    AuditAction.LINK_CREATE,
                    link_subject(link.id),
                    None,
                    link_view(link),
                    conn=conn,
                )
        audit.record(
            actor,
            AuditAction.REVIEW_RESOLVE,
            review_subject(item_id),
            item_view(before),
            item_view(after),
            conn=conn,
        )
        closed = [
            sibling.id
            for sibling in queue.open_siblings(before, conn=conn)
            if _resolve_sibling(queue, audit, conn, sibling.id, item_id, r4_patient_id, actor)
        ]
        return replace(after, resolved_siblings=tuple(closed))

    return in_transaction(queue.engine, attempt)


def _resolve_sibling(
    queue: ReviewQueue,
    audit: AuditLog,
    conn: sa.Connection,
    sibling_id: int,
    item_id: int,
    r4_patient_id: int,
    actor: str,
) -> bool:
    """Close one sibling of `item_id` as resolved to the same patient; False if it was closed
    by a concurrent action after the siblings were read."""
    try:
        before, after = queue.close(
            conn, sibling_id, state=ReviewState.RESOLVED, actor=actor, r4_patient_id=r4_patient_id
        )
    except ReviewClosed:
        return False
    followed: dict[str, Any] = {
        **item_view(after),
        "followed_from": item_id,
        "note": f"resolved with review item {item_id}, which linked the same PACS patient",
    }
    audit.record(
        actor,
        AuditAction.REVIEW_RESOLVE,
        review_subject(sibling_id),
        item_view(before),
        followed,
        conn=conn,
    )
    return True


def reopen(queue: ReviewQueue, audit: AuditLog, item_id: int, actor: str) -> ReviewItem:
    """Take a dismissal back: the item is open again, as it was before it was dismissed.

    Audits `review.reopen`. Raises ReviewNotFound, ReviewNotDismissed, ReviewAlreadyQueued."""
    return _change_item(
        queue, audit, item_id, actor, AuditAction.REVIEW_REOPEN, lambda c: queue.reopen(c, item_id)
    )


def _change_item(
    queue: ReviewQueue,
    audit: AuditLog,
    item_id: int,
    actor: str,
    action: AuditAction,
    change: Callable[[sa.Connection], tuple[ReviewItem, ReviewItem]],
) -> ReviewItem:
    """One change of an item and its audit record (before, after), in one transaction."""

    def attempt(conn: sa.Connection) -> ReviewItem:
        before, after = change(conn)
        audit.record(
            actor, action, review_subject(item_id), item_view(before), item_view(after), conn=conn
        )
        return after

    return in_transaction(queue.engine, attempt)


def dismiss(
    queue: ReviewQueue, audit: AuditLog, item_id: int, reason: str, actor: str
) -> ReviewItem:
    """Close the item without linking; the reason (1 to 500 characters) is kept.

    Raises ValueError (no reason, or too long), ReviewNotFound, ReviewClosed."""
    reason = reason.strip()
    if not 1 <= len(reason) <= DISMISS_REASON_MAX:
        raise ValueError(f"A dismissal needs a reason of 1 to {DISMISS_REASON_MAX} characters.")

    def close(conn: sa.Connection) -> tuple[ReviewItem, ReviewItem]:
        return queue.close(conn, item_id, state=ReviewState.DISMISSED, actor=actor, reason=reason)

    return _change_item(queue, audit, item_id, actor, AuditAction.REVIEW_DISMISS, close)


def create_link(
    links: PatientLinks,
    audit: AuditLog,
    pacs_patient_id: str,
    issuer: str,
    r4_patient_id: int,
    actor: str,
    *,
    action: AuditAction = AuditAction.LINK_CREATE,
    source: str = "api",
) -> tuple[PatientLink, bool]:
    """The link and whether it is new (only a new one is audited). Raises LinkConflict."""

    def attempt(conn: sa.Connection) -> tuple[PatientLink, bool]:
        link, created = links.link(
            pacs_patient_id, issuer, r4_patient_id, actor=actor, source=source, conn=conn
        )
        if created:
            audit.record(actor, action, link_subject(link.id), None, link_view(link), conn=conn)
        return link, created

    return in_transaction(links.engine, attempt)


def delete_link(links: PatientLinks, audit: AuditLog, link_id: int, actor: str) -> PatientLink:
    """Forget a link (the matcher stops using it at once). Raises LinkNotFound."""
    with writing(links.engine) as conn:
        removed = links.delete(link_id, conn=conn)
        if removed is None:
            raise LinkNotFound()
        audit.record(
            actor,
            AuditAction.LINK_DELETE,
            link_subject(link_id),
            link_view(removed),
            None,
            conn=conn,
        )
    return removed
