"""What fetches and pushes need of the review package, as protocols: the queue they add to and
the linked-id lookup. ReviewQueue and PatientLinks satisfy them; tests pass small fakes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from gateway.matching import MatchDecision
from gateway.review.records import ReviewItem, ReviewOrigin
from pacs.models import PacsPatient, Study


class ReviewSink(Protocol):
    """The part of `gateway.review.ReviewQueue` a fetch uses."""

    def add(
        self,
        *,
        origin: ReviewOrigin,
        pacs_name: str | None,
        patient: PacsPatient,
        study: Study,
        decision: MatchDecision,
        details: Mapping[int, dict[str, str | None]],
        job_id: str | None = None,
    ) -> tuple[ReviewItem, bool]: ...


class LinkedIds(Protocol):
    """The part of `gateway.review.PatientLinks` a fetch uses."""

    def pacs_ids_for(self, r4_patient_id: int) -> list[tuple[str, str]]: ...
