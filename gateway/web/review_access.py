"""Who may use the review pages, and the queue length the dashboard shows."""

from __future__ import annotations

from gateway.api.auth import Permission
from gateway.service import Gateway
from gateway.web.session import PageUser


def may_review(user: PageUser | None) -> bool:
    return user is not None and user.may(Permission.REVIEW)


def may_manage_studies(user: PageUser | None) -> bool:
    return user is not None and user.may(Permission.MANAGE_STUDIES)


def review_count(gateway: Gateway) -> int:
    return gateway.review.count()
