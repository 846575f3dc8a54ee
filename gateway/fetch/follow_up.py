"""After a resolve: bring in exactly the studies staff assigned, the item's and its siblings'.

Pushed studies are already in the store and are attached from there; the others are fetched
in one job restricted to their study uids (FetchRequest.study_uids).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace

import jobs
from gateway.fetch.request import FetchRequest
from gateway.review.queue import ReviewQueue
from gateway.review.records import ReviewItem, ReviewOrigin

log = logging.getLogger(__name__)

Submit = Callable[[FetchRequest], tuple[jobs.Job, bool]]
Attach = Callable[[ReviewItem], object]

# FetchRequest takes at most this many study uids; more (rare) make several jobs.
_UIDS_PER_JOB = 100


def bring_in_resolved(
    submit: Submit, attach: Attach, queue: ReviewQueue, item: ReviewItem
) -> ReviewItem:
    """Fetch or attach the studies of a resolved item and of the siblings it closed
    (`item.resolved_siblings`); returns the item as stored now, with its follow-up job.

    Every fetched item remembers the job as `follow_up_job_id`; a pushed one has none."""
    group = [item, *(s for s in map(queue.get, item.resolved_siblings) if s is not None)]
    fetched = [one for one in group if one.origin is not ReviewOrigin.PUSH]
    for start in range(0, len(fetched), _UIDS_PER_JOB):
        _fetch(submit, queue, fetched[start : start + _UIDS_PER_JOB])
    for one in group:
        if one.origin is ReviewOrigin.PUSH:
            attach(one)
    stored = queue.get(item.id) or item
    return replace(stored, resolved_siblings=item.resolved_siblings)


def _fetch(submit: Submit, queue: ReviewQueue, items: Sequence[ReviewItem]) -> None:
    """Queue one fetch for these items' studies (one PACS patient on one PACS) or find the
    active one doing it, and remember its id on each item.

    The decision stands whatever happens here (it is stored and audited): when no fetch can
    be queued (the PACS is no longer configured, the PACS id is empty) the items keep no
    follow-up job and a warning is logged."""
    first = items[0]
    try:
        request = FetchRequest(
            pacs_patient_id=first.pacs_patient_id,
            pacs=first.pacs_name,
            study_uids=[one.study_uid for one in items],
        )
        job, _ = submit(request)
    except (LookupError, ValueError) as exc:  # UnknownPacs; pydantic's ValidationError
        # The class only: a validation error's text quotes the ids.
        log.warning(
            "review item %d resolved, but its studies could not be queued for fetching (%s)",
            first.id,
            type(exc).__name__,
        )
        return
    for one in items:
        queue.set_follow_up(one.id, job.id)
