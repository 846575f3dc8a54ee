"""The appointment book: which R4 patients come in on which days (what prefetch reads).

Invariants:
- Built from the mapping only (`appointments_table`, `appointment_patient`,
  `appointment_patient_key`, `appointment_start`, `appointment_cancelled`); read-only.
- Days are compared as dates (`start >= first day AND start < the day after the last`), so
  a `date` column and a `datetime` one both work, on SQL Server 2008 and on SQLite alike.
- Only patients with an R4 patient id and not archived are answered; a patient with several
  appointments in the range is answered once, at the first.
- Bounded: at most `limit` rows are read (TOP n).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    Select,
    String,
    Table,
    TypeDecorator,
    or_,
    select,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

from r4.database import r4_tables
from r4.mapping import R4Tables
from r4.patients import active_only, patient_id_of

# More appointments than any practice books for a few days.
MAX_APPOINTMENTS = 5000


class AppointmentsNotMapped(LookupError):
    """The mapping does not say where appointments are; the message says what to set."""


class DateOrDateTime(TypeDecorator[datetime]):
    """A start column that may be `date` or `datetime`: read back as a datetime either way
    (a date as its midnight). SQLite keeps both as text, compared as ISO strings."""

    impl = DateTime
    cache_ok = True

    # SQLite: our own text conversions instead of DateTime's, which cannot read a date alone.
    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return lambda value: self.process_bind_param(value, dialect)
        return super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name == "sqlite":
            return lambda value: self.process_result_value(value, dialect)
        return super().result_processor(dialect, coltype)

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if dialect.name == "sqlite" and isinstance(value, date):
            return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value.strip())
        if isinstance(value, datetime):
            return value
        if isinstance(value, date):
            return datetime.combine(value, time())
        raise ValueError(f"not a date or datetime: {type(value).__name__}")


@dataclass(frozen=True)
class Appointment:
    patient_id: int
    starts_at: datetime


def appointments_table(t: R4Tables) -> Table:
    """The appointment book's Table in the patients' metadata. Raises AppointmentsNotMapped."""
    m = t.mapping
    if not m.appointments_mapped:
        missing = [
            name
            for name in (
                "appointments_table",
                "appointment_patient",
                "appointment_patient_key",
                "appointment_start",
            )
            if not getattr(m, name)
        ]
        raise AppointmentsNotMapped(
            f"Appointments are not mapped: set {', '.join(missing)} in [r4] "
            "(`pacs-gateway check` lists the appointment table's date and time columns)."
        )
    assert m.appointments_table and m.appointment_patient and m.appointment_start
    metadata = t.patients.metadata
    existing = next(
        (tb for tb in metadata.tables.values() if tb.name == m.appointments_table), None
    )
    if existing is not None:
        return existing
    key = m.appointment_patient_key or ""
    if key not in t.patients.c:  # a patients-table column no patient read uses
        t.patients.append_column(Column(key, String()))
    columns: list[Column[Any]] = [
        Column(m.appointment_patient, _key_type(t)),
        Column(m.appointment_start, DateOrDateTime()),
    ]
    if m.appointment_cancelled:
        columns.append(Column(m.appointment_cancelled, Integer()))
    return Table(m.appointments_table, metadata, *columns)


def appointments_query(
    t: R4Tables, first_day: date, last_day: date, limit: int = MAX_APPOINTMENTS
) -> Select[Any]:
    """R4 patient id and start of each appointment from `first_day` to `last_day`, both
    included, earliest first. Raises AppointmentsNotMapped."""
    m = t.mapping
    book = appointments_table(t)
    key = t.patients.c[m.appointment_patient_key or ""]
    start = book.c[m.appointment_start or ""]
    query = (
        select(t.patient_id.label("patient_id"), start.label("starts_at"))
        .select_from(t.source.join(book, book.c[m.appointment_patient or ""] == key))
        .where(start >= first_day, start < last_day + timedelta(days=1))
        .order_by(start)
        .limit(limit)
    )
    if m.appointment_cancelled:
        cancelled = book.c[m.appointment_cancelled]
        query = query.where(or_(cancelled.is_(None), cancelled == 0))
    return query.where(*active_only(t))


def appointments_between(
    engine: Engine, first_day: date, last_day: date, limit: int = MAX_APPOINTMENTS
) -> list[Appointment]:
    """Each patient with an appointment in the range, once, at their first appointment."""
    t = r4_tables(engine)
    seen: dict[int, Appointment] = {}
    with engine.connect() as conn:
        for row in conn.execute(appointments_query(t, first_day, last_day, limit)):
            patient_id = patient_id_of(row.patient_id)
            if patient_id is None or patient_id in seen or row.starts_at is None:
                continue
            seen[patient_id] = Appointment(patient_id, row.starts_at)
    return sorted(seen.values(), key=lambda a: (a.starts_at, a.patient_id))


def next_working_day(today: date) -> date:
    """The day after `today`, Saturday and Sunday skipped (when a prefetch pass looks ahead)."""
    day = today + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _key_type(t: R4Tables) -> TypeEngine[Any]:
    key = t.patients.c.get(t.mapping.appointment_patient_key or "")
    return key.type if key is not None else String()
