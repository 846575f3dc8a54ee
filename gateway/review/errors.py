"""Refusals of the review package. Messages are sentences for people and carry no patient
data (no PACS or R4 ids, no names): routes may send them out as they are."""

from __future__ import annotations

from datetime import datetime


class ReviewError(Exception):
    """Base of the refusals below."""


class ReviewNotFound(ReviewError, LookupError):
    def __init__(self) -> None:
        super().__init__("No review item has this id; it may have been mistyped.")


class ReviewClosed(ReviewError):
    """Resolve or dismiss of an item that is no longer open."""

    def __init__(self, state: str, closed_at: datetime | None, closed_by: str | None) -> None:
        self.state = state
        self.closed_at = closed_at
        self.closed_by = closed_by
        when = f" on {closed_at:%Y-%m-%d at %H:%M} UTC" if closed_at else ""
        who = f" by {closed_by}" if closed_by else ""
        super().__init__(
            f"This review item was already {state}{when}{who}; a closed item cannot be "
            "resolved or dismissed again."
        )


class ReviewNotDismissed(ReviewError):
    """Reopen of an item that is open or resolved: only a dismissal can be taken back."""

    def __init__(self, state: str) -> None:
        self.state = state
        super().__init__(f"Only a dismissed review item can be reopened; this one is {state}.")


class ReviewAlreadyQueued(ReviewError):
    """Reopen of a dismissed item whose study has another open item (queued before
    dismissals held)."""

    def __init__(self, open_item_id: int) -> None:
        self.open_item_id = open_item_id
        super().__init__(
            f"Review item {open_item_id} already holds this study in the queue; "
            "decide on that one instead."
        )


class LinkNotFound(ReviewError, LookupError):
    def __init__(self) -> None:
        super().__init__("No patient link has this id; it may have been mistyped or deleted.")


class LinkConflict(ReviewError):
    """The PACS patient id (with its issuer) is already linked to another R4 patient."""

    def __init__(self, link_id: int) -> None:
        self.link_id = link_id
        super().__init__(
            f"This PACS patient id is already linked to another R4 patient (link {link_id}); "
            "if that link is wrong, delete it first."
        )


class UnknownR4Patient(ReviewError, LookupError):
    def __init__(self) -> None:
        super().__init__(
            "No R4 patient has this id (or no R4 database is configured here); "
            "check the id, or search for the patient in R4."
        )


class R4Unavailable(ReviewError):
    def __init__(self, cause: str) -> None:
        super().__init__(
            f"The R4 database could not be read ({cause}), so the patient could not be "
            "checked; nothing was changed. Try again later."
        )


class InvalidLinkFile(ReviewError, ValueError):
    """A CSV import refused as a whole (wrong header, not text, unreadable)."""
