"""Pushed studies a crash kept from being matched, found again when the gateway starts.

A push is matched after its association ends, from memory (`receiver`). If the process
dies in between (SIGKILL, power cut), its files are in the store but neither indexed nor queued
for review, and nothing would ever bring them up again. So at start, before the Storage SCP
accepts associations, one listing of the store root (no file is read) finds the study folders
nothing accounts for:

- not in the study index;
- not on any review item, whatever its state (open: staff will decide; resolved or dismissed:
  they did, and a dismissal holds);
- not in the plan of any fetch job: an active one indexes its studies when it resumes, and a
  failed or cancelled one's partial study was asked for, not pushed (a retry completes it).

Each is handed to the push matching (origin push) on the push worker, so R4 being slow does
not hold up the start: indexed when the matcher links it, else queued for review, under the
PACS whose AE title sent it (`pushes.SenderMarks`) or `UNKNOWN_SENDER` when that was not noted.
Logs carry counts and uids only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator

import sqlalchemy as sa

import jobs
from gateway.core.models import review_item, study
from gateway.fetch.job import FETCH_KIND
from gateway.fetch.plan import planned_study_uids
from gateway.pushes.receiver import PushedStudies
from pacs.store import InvalidUID, check_uid

log = logging.getLogger(__name__)

# Study uids per IN (...) query: far below every database's bound-parameter limit.
_CHUNK = 500
_JOBS_PAGE = 200


def recover_unmatched_pushes(pushes: PushedStudies, job_store: jobs.JobStore) -> list[str]:
    """Find the unmatched study folders and queue them on `pushes`; returns their uids.

    Call before the Storage SCP starts, so nothing can be arriving meanwhile. A failure is
    logged and start goes on: the folders are looked at again at the next start."""
    engine = pushes.index.engine
    try:
        found = find_unmatched(pushes.store.root, engine, job_store)
        pushes.marks.keep_only(found)
    except Exception:
        log.exception(
            "the study store could not be checked for received studies never matched; "
            "it is checked again at the next start"
        )
        return []
    if found:
        log.warning(
            "received but never matched (the gateway stopped first): %d %s, matched now as "
            "pushes: %s",
            len(found),
            "study" if len(found) == 1 else "studies",
            ", ".join(found),
        )
    pushes.recover(found)
    return found


def find_unmatched(
    store_root: os.PathLike[str], engine: sa.Engine, job_store: jobs.JobStore
) -> list[str]:
    """The study folders of the store that are not indexed, on no review item and in no
    active fetch job's plan, sorted."""
    left = set(_study_folders(store_root))
    if left:
        left -= _present(engine, study.c.study_uid, left)
    if left:
        left -= _present(engine, review_item.c.study_uid, left)
    if left:
        left -= _planned(job_store)
    return sorted(left)


def _study_folders(store_root: os.PathLike[str]) -> Iterator[str]:
    """Names of the folders at the top of the store that are study uids (not `.incoming`)."""
    with os.scandir(store_root) as entries:
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                continue
            try:
                yield check_uid(entry.name, "StudyInstanceUID")
            except InvalidUID:
                continue


def _present(engine: sa.Engine, column: sa.Column[str], study_uids: Iterable[str]) -> set[str]:
    """Which of `study_uids` occur in `column`."""
    uids = sorted(study_uids)
    present: set[str] = set()
    with engine.connect() as conn:
        for start in range(0, len(uids), _CHUNK):
            chunk = uids[start : start + _CHUNK]
            present.update(conn.scalars(sa.select(column).distinct().where(column.in_(chunk))))
    return present


def _planned(job_store: jobs.JobStore) -> set[str]:
    """Study uids in the plans (checkpoints) of fetch jobs, whatever their state."""
    planned: set[str] = set()
    offset = 0
    while True:
        page = job_store.list(kind=FETCH_KIND, limit=_JOBS_PAGE, offset=offset)
        for job in page:
            planned.update(planned_study_uids(job.checkpoint))
        if len(page) < _JOBS_PAGE:
            return planned
        offset += _JOBS_PAGE
