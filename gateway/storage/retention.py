"""What the store keeps, and what it lets go: limits, least recently used first, never what a
person is about to look at.

Invariants:
- The store stays within `storage_max_gb` (when set) and leaves `storage_min_free_gb` free on
  its disk, as far as removing studies can make it; a study is removed whole (files, index
  rows, previews), audited, and remembered as removed (`StudyIndex.removal`) so the API and
  pages can say when and why.
- Never removed: a study an active job is fetching (its plan), one used in the last
  `limits.in_use` (being viewed or served now), one with an open review item, one staff
  marked "keep", one pinned until a time not yet passed (a prefetch), and, unless
  `evict_pushed`, one the gateway has only from a push (no fetch vouched that a PACS still
  holds it).
- Candidates come from the index in last-use order (an index on `study.last_used_at`), never
  from walking the store: choosing stays fast with 100,000 studies.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from gateway.core.models import review_item, study
from gateway.core.settings import Settings
from gateway.index.study_index import IndexedStudy, StudyIndex
from gateway.review.audit import AuditAction, AuditLog, study_subject
from pacs.store import StudyStore, free_bytes
from pacs.store import size_words as size

log = logging.getLogger(__name__)

GB = 10**9
# Candidates are read from the index this many at a time.
BATCH = 200
# Last-use writes for one study at most this often (a page of thumbnails is many requests).
TOUCH_EVERY_SECONDS = 60
_TOUCHES_REMEMBERED = 10_000

# Until the index knows better: a dental CBCT slice or a panoramic image is about this size.
DEFAULT_IMAGE_BYTES = 512 * 1024
DEFAULT_STUDY_IMAGES = 100

RULE_UNUSED = "unused"
RULE_MAX_SIZE = "max_size"
RULE_MIN_FREE = "min_free"


@dataclass(frozen=True)
class Limits:
    max_bytes: int | None  # None: no limit of the gateway's own
    min_free_bytes: int
    keep_unused: timedelta
    evict_pushed: bool
    # Used this recently: someone is looking at it, it is not removed to make room.
    in_use: timedelta = timedelta(minutes=10)

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            max_bytes=int(settings.storage_max_gb * GB) if settings.storage_max_gb else None,
            min_free_bytes=int(settings.storage_min_free_gb * GB),
            keep_unused=timedelta(days=settings.keep_unused_days),
            evict_pushed=settings.evict_pushed,
            in_use=timedelta(minutes=settings.storage_in_use_minutes),
        )


@dataclass(frozen=True)
class Figures:
    """The store's numbers now, for /ready, /metrics, the dashboard and sentences."""

    used_bytes: int  # what the index says the studies take
    free_bytes: int  # on the disk that holds the store
    limits: Limits

    @property
    def room(self) -> int:
        """Bytes a fetch may add before a limit is reached (negative: a limit is passed)."""
        by_floor = self.free_bytes - self.limits.min_free_bytes
        if self.limits.max_bytes is None:
            return by_floor
        return min(by_floor, self.limits.max_bytes - self.used_bytes)

    @property
    def floor_kept(self) -> bool:
        return self.free_bytes >= self.limits.min_free_bytes


@dataclass(frozen=True)
class NoRoom:
    """A fetch cannot have the room it needs: in words that name the disk and the figures."""

    figures: Figures
    needed_bytes: int

    def sentence(self) -> str:
        f = self.figures
        floor = (
            f"The gateway's disk has {size(f.free_bytes)} free and keeps "
            f"{size(f.limits.min_free_bytes)} free for the server"
        )
        if f.limits.max_bytes is not None and f.used_bytes + self.needed_bytes > f.limits.max_bytes:
            floor = (
                f"The gateway's store holds {size(f.used_bytes)} of its "
                f"{size(f.limits.max_bytes)} (storage_max_gb)"
            )
        return (
            f"{floor}; this study needs about {size(self.needed_bytes)} more, and every "
            "study that could be removed for it is in use, kept or pinned. Free space on "
            "the disk or raise the limit, then try again."
        )


class Retention:
    def __init__(
        self,
        limits: Limits,
        index: StudyIndex,
        store: StudyStore,
        audit: AuditLog,
        active_studies: Callable[[], Iterable[str]],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.limits = limits
        self.index = index
        self.store = store
        self.audit = audit
        self.active_studies = active_studies
        self._clock = clock
        self._lock = threading.Lock()  # one removal pass at a time in this process
        self._touched: dict[str, datetime] = {}
        self.removed_total = 0

    # -- figures ---------------------------------------------------------------------------

    def figures(self) -> Figures:
        with self.index.engine.connect() as conn:
            used = conn.scalar(sa.select(sa.func.coalesce(sa.func.sum(study.c.bytes), 0)))
        return Figures(int(used or 0), _free(self.store.root), self.limits)

    def estimate(self, instances: int | None, stored_bytes: int = 0) -> int:
        """Bytes a study of `instances` images will add, by the average image in the index
        (DEFAULT_IMAGE_BYTES while it is empty), less what is stored of it already. With no
        count from the PACS: one average study."""
        with self.index.engine.connect() as conn:
            total, images, studies = conn.execute(
                sa.select(
                    sa.func.coalesce(sa.func.sum(study.c.bytes), 0),
                    sa.func.coalesce(sa.func.sum(study.c.instance_count), 0),
                    sa.func.count(),
                )
            ).one()
        per_image = int(total) // int(images) if images else DEFAULT_IMAGE_BYTES
        if instances is None:
            instances = int(images) // int(studies) if studies else DEFAULT_STUDY_IMAGES
        return max(0, instances * per_image - stored_bytes)

    # -- use ---------------------------------------------------------------------------------

    def used(self, study_uid: str) -> None:
        """The study was viewed, previewed or served: it goes last. Written at most once a
        minute per study."""
        now = self._clock()
        last = self._touched.get(study_uid)
        if last is not None and (now - last).total_seconds() < TOUCH_EVERY_SECONDS:
            return
        if len(self._touched) >= _TOUCHES_REMEMBERED:
            self._touched.clear()
        self._touched[study_uid] = now
        self.index.touch(study_uid, now)

    # -- removing ----------------------------------------------------------------------------

    def sweep(self) -> int:
        """Remove what has not been used for `keep_unused`, then keep the limits; the number
        of studies removed. Run at start, on a timer, and before each fetch."""
        with self._lock:
            removed = self._remove_unused()
            removed += self._keep_limits(needed=0, protect=frozenset())
        return removed

    def make_room(self, needed: int, protect: Iterable[str] = ()) -> NoRoom | None:
        """Remove least recently used studies until `needed` more bytes fit; None when they
        do, else what stands in the way (nothing more could be removed)."""
        with self._lock:
            self._keep_limits(needed=needed, protect=frozenset(protect))
            figures = self.figures()
        return None if figures.room >= needed else NoRoom(figures, needed)

    def _remove_unused(self) -> int:
        cutoff = self._clock() - self.limits.keep_unused
        removed = 0
        for found in self._candidates(frozenset(), older_than=cutoff):
            days = self.limits.keep_unused.days
            if self._remove(found, RULE_UNUSED, f"because nobody used it for {days} days"):
                removed += 1
        return removed

    def _keep_limits(self, *, needed: int, protect: frozenset[str]) -> int:
        removed = 0
        figures = self.figures()
        if figures.room >= needed:
            return 0
        for found in self._candidates(protect):
            over_max = (
                self.limits.max_bytes is not None
                and figures.used_bytes + needed > self.limits.max_bytes
            )
            if over_max:
                rule = RULE_MAX_SIZE
                reason = f"to keep the store within {size(self.limits.max_bytes or 0)}"
            else:
                rule = RULE_MIN_FREE
                reason = f"to keep {size(self.limits.min_free_bytes)} free on the disk"
            if self._remove(found, rule, reason):
                removed += 1
                figures = Figures(
                    figures.used_bytes - found.bytes, _free(self.store.root), self.limits
                )
            if figures.room >= needed:
                break
        return removed

    def _candidates(
        self, protect: frozenset[str], *, older_than: datetime | None = None
    ) -> Iterable[IndexedStudy]:
        """Removable studies, least recently used first, read from the index in batches."""
        now = self._clock()
        protected = set(protect) | set(self.active_studies())
        seen: set[str] = set()
        while True:
            query = (
                sa.select(study.c.study_uid)
                .where(
                    ~study.c.keep,
                    sa.or_(study.c.pinned_until.is_(None), study.c.pinned_until <= now),
                    study.c.last_used_at <= now - self.limits.in_use,
                    ~sa.exists().where(
                        review_item.c.study_uid == study.c.study_uid,
                        review_item.c.state == "open",
                    ),
                )
                .order_by(study.c.last_used_at, study.c.study_uid)
                .limit(BATCH)
            )
            if older_than is not None:
                query = query.where(study.c.last_used_at < older_than)
            if not self.limits.evict_pushed:
                query = query.where(study.c.job_id.is_not(None))
            if protected | seen:
                query = query.where(study.c.study_uid.not_in(sorted(protected | seen)))
            with self.index.engine.connect() as conn:
                uids = conn.scalars(query).all()
            if not uids:
                return
            for uid in uids:
                seen.add(uid)
                found = self.index.study(uid)
                if found is not None:
                    yield found

    def _remove(self, found: IndexedStudy, rule: str, reason: str) -> bool:
        if self.index.remove(found.study_uid, rule=rule, reason=reason) is None:
            return False  # removed meanwhile (staff, another process)
        files = self.store.remove_study(found.study_uid)
        self.removed_total += 1
        self.audit.record(
            "gateway:retention",
            AuditAction.STUDY_REMOVED,
            study_subject(found.study_uid),
            {
                "pacs": found.pacs_name,
                "pacs_patient_id": found.pacs_patient_id,
                "instances": found.instance_count,
                "bytes": found.bytes,
            },
            {"rule": rule, "reason": reason, "files_removed": files},
        )
        log.info("Removed study %s (%s, %s): %s", found.study_uid, size(found.bytes), rule, reason)
        return True


def _free(root: Path) -> int:
    return free_bytes(root) or 0
