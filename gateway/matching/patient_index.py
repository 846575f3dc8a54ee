"""Blocking index over the practice's patients, so each PACS patient meets a handful of candidates.

Blocks:
- birth date (as a day ordinal). The day/month-swapped block needs no second index: the
  query looks up both its date and its swapped date in the same table.
- name pairs: unordered (family token key, given token key) Soundex pairs. Unordered so a
  given/family swap lands in the same block; per token so compound and partial names do too.
  This block finds candidates whose birth date is missing or wrong on one side.
- ids: chart numbers and R4 other ids under `loose_id_key`, for the id rules.

Storage is columnar (parallel arrays and interned strings) rather than one object per patient:
100,000 `PatientRecord`s as dataclasses cost several times more than their normalised names.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Iterator
from datetime import date
from itertools import combinations

from gateway.matching.normalize import (
    blocking_tokens,
    normalize_birth_date,
    normalize_name,
    normalize_sex,
    swap_day_month,
)
from gateway.matching.rules import loose_id_key
from gateway.matching.scoring import Demographics
from r4.records import PatientRecord

_NO_DATE = 0
_SEX_CODE = {None: 0, "M": 1, "F": 2}
_SEX_FROM_CODE = (None, "M", "F")
# Name-pair blocks bigger than this are skipped at query time: a pair that common ("maria" +
# "garcia" in a large practice) cannot narrow anything, and the birth-date block still applies.
DEFAULT_MAX_NAME_BLOCK = 2000


def _name_pair_keys(family_keys: tuple[str, ...], given_keys: tuple[str, ...]) -> set[str]:
    keys = set()
    for f in family_keys[:3]:
        for g in given_keys[:3]:
            keys.add(f"{f}|{g}" if f <= g else f"{g}|{f}")
    return keys


def _query_pair_keys(tokens_keys: tuple[str, ...]) -> set[str]:
    """Every unordered pair of the query's token keys.

    The query side is generous on purpose (family x given, swapped, or a whole name typed into
    one component all reduce to "two of my tokens"); the index side stays at family x given.
    """
    keys = set()
    for a, b in combinations(tokens_keys[:6], 2):
        keys.add(f"{a}|{b}" if a <= b else f"{b}|{a}")
    return keys


class PatientIndex:
    """R4 patients, normalised once, with blocks for candidate lookup."""

    def __init__(self, max_name_block: int = DEFAULT_MAX_NAME_BLOCK) -> None:
        self.max_name_block = max_name_block
        self._ids = array("q")
        self._birth = array("i")  # date ordinal, 0 = unknown
        self._sex = array("b")
        self._family: list[str] = []
        self._given: list[str] = []
        self._row_of: dict[int, int] = {}
        self._by_birth: dict[int, list[int]] = {}
        self._by_name: dict[str, list[int]] = {}
        self._by_chart: dict[str, list[int]] = {}
        self._by_other_id: dict[str, list[int]] = {}
        # Raw ids are kept only for rows that have them, to re-check a rule's exact form.
        self._chart: dict[int, str] = {}
        self._other_ids: dict[int, tuple[str, ...]] = {}

    @classmethod
    def build(
        cls, records: Iterable[PatientRecord], max_name_block: int = DEFAULT_MAX_NAME_BLOCK
    ) -> PatientIndex:
        """Build from any iterable, consumed once (a database cursor is fine)."""
        index = cls(max_name_block=max_name_block)
        for record in records:
            index.add(record)
        return index

    def add(self, record: PatientRecord) -> None:
        if record.id in self._row_of:
            # Same R4 id twice means the feed is broken; silently keeping either copy could
            # score against stale demographics.
            raise ValueError(f"R4 patient id {record.id} added twice")
        row = len(self._ids)
        name = normalize_name(record.family_name, record.given_name)
        birth = normalize_birth_date(record.birth_date)
        self._ids.append(record.id)
        self._birth.append(birth.toordinal() if birth else _NO_DATE)
        self._sex.append(_SEX_CODE[normalize_sex(record.sex)])
        # Interning shares one string object among the many patients with the same name.
        self._family.append(sys.intern(name.family))
        self._given.append(sys.intern(name.given))
        self._row_of[record.id] = row
        if birth:
            self._by_birth.setdefault(birth.toordinal(), []).append(row)
        family_keys = blocking_tokens(name.family_tokens)
        given_keys = blocking_tokens(name.given_tokens)
        for key in _name_pair_keys(family_keys, given_keys):
            self._by_name.setdefault(key, []).append(row)
        if record.chart_number and record.chart_number.strip():
            self._chart[row] = record.chart_number
            self._by_chart.setdefault(loose_id_key(record.chart_number), []).append(row)
        others = tuple(i for i in record.other_ids if i and i.strip())
        if others:
            self._other_ids[row] = others
            for other in others:
                self._by_other_id.setdefault(loose_id_key(other), []).append(row)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, r4_patient_id: object) -> bool:
        return r4_patient_id in self._row_of

    # Rows are internal; the matcher works with them to avoid building objects per lookup.

    def row_of(self, r4_patient_id: int) -> int | None:
        return self._row_of.get(r4_patient_id)

    def r4_id(self, row: int) -> int:
        return self._ids[row]

    def demographics(self, row: int) -> Demographics:
        ordinal = self._birth[row]
        return Demographics(
            family=self._family[row],
            given=self._given[row],
            birth_date=date.fromordinal(ordinal) if ordinal else None,
            sex=_SEX_FROM_CODE[self._sex[row]],
        )

    def chart_number(self, row: int) -> str | None:
        return self._chart.get(row)

    def other_ids(self, row: int) -> tuple[str, ...]:
        return self._other_ids.get(row, ())

    def rows_by_chart(self, loose_key: str) -> list[int]:
        return self._by_chart.get(loose_key, [])

    def rows_by_other_id(self, loose_key: str) -> list[int]:
        return self._by_other_id.get(loose_key, [])

    def candidate_rows(self, query: Demographics) -> Iterator[int]:
        """Rows worth scoring for `query`: same or day/month-swapped birth date, or a shared
        name pair. Each row at most once."""
        seen: set[int] = set()
        if query.birth_date is not None:
            dates = [query.birth_date]
            swapped = swap_day_month(query.birth_date)
            if swapped is not None:
                dates.append(swapped)
            for day in dates:
                for row in self._by_birth.get(day.toordinal(), ()):
                    if row not in seen:
                        seen.add(row)
                        yield row
        token_keys = blocking_tokens(tuple(f"{query.family} {query.given}".split()))
        for key in _query_pair_keys(token_keys):
            block = self._by_name.get(key, ())
            if len(block) > self.max_name_block:
                continue
            for row in block:
                if row not in seen:
                    seen.add(row)
                    yield row

    def stats(self) -> dict[str, int]:
        """Sizes for benchmarks and health pages (no patient data)."""
        birth_sizes = [len(v) for v in self._by_birth.values()]
        name_sizes = [len(v) for v in self._by_name.values()]
        return {
            "patients": len(self),
            "birth_date_blocks": len(birth_sizes),
            "largest_birth_date_block": max(birth_sizes, default=0),
            "name_pair_blocks": len(name_sizes),
            "largest_name_pair_block": max(name_sizes, default=0),
            "chart_numbers": len(self._by_chart),
            "other_ids": len(self._by_other_id),
        }
