"""The practice's patients as the gateway sees them: look-up, display, search and the matcher.

Built from the R4 database when one is configured; without R4 it is empty (`get` -> None,
`matcher` -> None) and everything that needs a decision goes to the review queue.

The matcher's `PatientIndex` is built by streaming R4 once (page by page, see
`r4.patients.iter_patient_records`) and rebuilt when it is older than `refresh_seconds`, or
on demand (`refresh`, or `matcher(require=...)` for a patient the index does not hold yet),
so patients registered in R4 after the gateway started are matched too. While a rebuild runs,
other callers keep matching against the previous index rather than waiting for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from sqlalchemy import Engine

from gateway.matching import IdRule, LinkLookup, Matcher, NoLinks, PatientIndex, Thresholds
from r4.patients import find_patient_records, get_patient_record, iter_patient_records
from r4.records import PatientRecord

log = logging.getLogger(__name__)

# R4 changes slowly; a new patient is also picked up at once through `matcher(require=...)`.
DEFAULT_REFRESH_SECONDS = 300.0

Display = dict[str, str | None]


class PatientDirectory:
    """R4 patients for matching and for staff choosing whom a study belongs to.

    `links` (the review package's `PatientLinks`) is read by each matcher handed out: staff
    links take effect at once.
    """

    def __init__(
        self,
        engine: Engine | None,
        *,
        id_rules: Sequence[IdRule] = (),
        thresholds: Thresholds | None = None,
        links: LinkLookup | None = None,
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.id_rules = tuple(id_rules)
        self.thresholds = thresholds or Thresholds()
        self.links: LinkLookup = links if links is not None else NoLinks()
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._index: PatientIndex | None = None
        self._built_at = 0.0
        self._build_lock = threading.Lock()

    @property
    def configured(self) -> bool:
        """True when an R4 database backs this directory."""
        return self.engine is not None

    # -- single patients ---------------------------------------------------------------------

    def get(self, r4_patient_id: int) -> PatientRecord | None:
        """The R4 patient, read fresh from R4; None if unknown or R4 is not configured."""
        if self.engine is None:
            return None
        return get_patient_record(self.engine, int(r4_patient_id))

    @staticmethod
    def display(record: PatientRecord) -> Display:
        """What staff are shown of an R4 patient next to a PACS patient (a review candidate)."""
        return {
            "family_name": record.family_name or None,
            "given_name": record.given_name or None,
            "birth_date": record.birth_date.isoformat() if record.birth_date else None,
            "sex": record.sex,
            "chart_number": record.chart_number,
        }

    def details(self, r4_patient_ids: Sequence[int]) -> dict[int, Display]:
        """Display dicts of several patients (unknown ids left out): candidate lists."""
        found: dict[int, Display] = {}
        for r4_id in dict.fromkeys(r4_patient_ids):
            record = self.get(r4_id)
            if record is not None:
                found[r4_id] = self.display(record)
        return found

    def search(self, text: str, limit: int = 20) -> list[PatientRecord]:
        """Active R4 patients whose names start with every word of `text`, or whose chart
        number, R4 id or birth date (ISO or DD/MM/YYYY) is one of the words."""
        if self.engine is None or not text.strip() or limit < 1:
            return []
        return find_patient_records(self.engine, text, limit)

    # -- matching ----------------------------------------------------------------------------

    def matcher(self, require: int | None = None) -> Matcher | None:
        """A matcher over the current index, or None without R4.

        With `require`, an index that does not hold that R4 patient is rebuilt first (a
        patient registered since the last build): callers check with `get` that R4 has the
        patient, or every request for an unknown id would rebuild. Raises SQLAlchemy errors
        when R4 cannot be read for a first build.
        """
        index = self.index(require=require)
        if index is None:
            return None
        return Matcher(index, links=self.links, id_rules=self.id_rules, thresholds=self.thresholds)

    def index(self, require: int | None = None) -> PatientIndex | None:
        if self.engine is None:
            return None
        current = self._index
        stale = current is None or self._clock() - self._built_at >= self.refresh_seconds
        missing = current is not None and require is not None and require not in current
        if current is not None and not stale and not missing:
            return current
        if current is not None and not missing:
            # Only staleness: someone else rebuilding is as good as us rebuilding.
            if not self._build_lock.acquire(blocking=False):
                return current
        else:
            self._build_lock.acquire()
        try:
            latest = self._index
            rebuilt_meanwhile = latest is not None and latest is not current
            if rebuilt_meanwhile and (require is None or require in latest):
                return latest
            return self._build()
        finally:
            self._build_lock.release()

    def refresh(self) -> PatientIndex | None:
        """Rebuild the index from R4 now (e.g. after staff registered a patient)."""
        if self.engine is None:
            return None
        with self._build_lock:
            return self._build()

    def _build(self) -> PatientIndex:
        assert self.engine is not None
        started = time.perf_counter()
        index = PatientIndex.build(iter_patient_records(self.engine))
        self._index = index
        self._built_at = self._clock()
        # Counts only: the index holds patient data, its size does not.
        log.info(
            "patient index built: %d R4 patients in %.1f s",
            len(index),
            time.perf_counter() - started,
        )
        return index
