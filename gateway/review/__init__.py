"""The review queue, remembered patient links and the audit trail of what staff decided.

- `ReviewQueue`: studies no rule could assign to an R4 patient, with ranked candidates and
  the reasons, kept until staff resolve (link) or dismiss them (a dismissal holds until
  staff reopen the item);
- `PatientLinks`: PACS (PatientID, issuer) -> R4 patient, read first by the matcher;
- `AuditLog`: who (API key name) did what, when, with the state before and after;
- `actions`: the staff actions that change these together, in one transaction each;
- `link_import`: links from a CSV file.

No HTTP here: gateway.api.routes_review / routes_links / routes_audit expose it.
"""

from gateway.review.audit import AuditAction, AuditLog
from gateway.review.errors import (
    InvalidLinkFile,
    LinkConflict,
    LinkNotFound,
    R4Unavailable,
    ReviewAlreadyQueued,
    ReviewClosed,
    ReviewError,
    ReviewNotDismissed,
    ReviewNotFound,
    UnknownR4Patient,
)
from gateway.review.links import PatientLinks
from gateway.review.queue import ReviewQueue
from gateway.review.records import (
    AuditEvent,
    PatientLink,
    ReviewCandidate,
    ReviewItem,
    ReviewOrigin,
    ReviewState,
)
from gateway.review.sinks import LinkedIds, ReviewSink

__all__ = [
    "AuditAction",
    "AuditEvent",
    "AuditLog",
    "InvalidLinkFile",
    "LinkConflict",
    "LinkNotFound",
    "LinkedIds",
    "PatientLink",
    "PatientLinks",
    "R4Unavailable",
    "ReviewAlreadyQueued",
    "ReviewCandidate",
    "ReviewClosed",
    "ReviewError",
    "ReviewItem",
    "ReviewNotDismissed",
    "ReviewNotFound",
    "ReviewOrigin",
    "ReviewQueue",
    "ReviewSink",
    "ReviewState",
    "UnknownR4Patient",
]
