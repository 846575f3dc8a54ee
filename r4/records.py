"""Typed records the `r4` package hands to the rest of the gateway."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class PatientRecord:
    """One practice patient as R4 knows them. Everything but `id` may be missing."""

    id: int
    chart_number: str | None = None
    family_name: str = ""
    given_name: str = ""
    birth_date: date | None = None
    sex: str | None = None  # "M", "F", "O" or None
    other_ids: tuple[str, ...] = ()
