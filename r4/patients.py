"""Reading patients, their details and medical history out of R4.

Whole-practice reads page through the patients table by primary key (keyset pagination:
`WHERE PatientID > :last ORDER BY PatientID` with `TOP n` on SQL Server). Each page is its own
short query on its own pooled connection, so memory holds one page whatever the practice
size and we never keep a long-running cursor or read transaction open on the practice's
live database. Keyset rather than OFFSET because SQL Server 2008 has no OFFSET/FETCH and
because OFFSET rescans skipped rows on every page.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy import Column, ColumnElement, Engine, Row, func, or_, select

from r4.records import PatientRecord
from r4.schema import (
    medical_history,
    patients,
    questionnaire_answers,
    questionnaire_questions,
)

DEFAULT_BATCH_SIZE = 1000


@dataclass(frozen=True, slots=True)
class Address:
    line1: str | None = None
    line2: str | None = None
    town: str | None = None
    county: str | None = None
    postcode: str | None = None


@dataclass(frozen=True, slots=True)
class Contact:
    home_phone: str | None = None
    work_phone: str | None = None
    mobile_phone: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class MedicalHistoryEntry:
    question: str
    answer: str | None = None  # one of the practice's pre-set answers
    notes: str | None = None  # free text typed by staff: clinical data
    recorded_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PatientDetails:
    """What Flynotes gets: the matching record plus address, contact and (for a full sync)
    medical history. `address` is None for patients without one; they are still valid."""

    record: PatientRecord
    title: str | None = None
    middle_name: str | None = None
    preferred_name: str | None = None
    address: Address | None = None
    contact: Contact = Contact()
    medical_history: tuple[MedicalHistoryEntry, ...] = ()


_PATIENT_COLUMNS = (
    patients.c.PatientID,
    patients.c.ChartNumber,
    patients.c.Title,
    patients.c.FirstName,
    patients.c.MiddleName,
    patients.c.LastName,
    patients.c.PreferredName,
    patients.c.BirthDate,
    patients.c.Sex,
    patients.c.NHSNumber,
    patients.c.AddressLine1,
    patients.c.AddressLine2,
    patients.c.Town,
    patients.c.County,
    patients.c.Postcode,
    patients.c.HomePhone,
    patients.c.WorkPhone,
    patients.c.MobilePhone,
    patients.c.Email,
)


def _clean(value: str | None) -> str | None:
    # R4 pads with spaces and uses '' for unknown; both mean "missing" to us.
    if value is None:
        return None
    value = value.strip()
    return value or None


def _sex(value: str | None) -> str | None:
    value = (_clean(value) or "").upper()
    if value in ("M", "F"):
        return value
    return "O" if value == "O" else None


def _birth_date(value: date | datetime | None) -> date | None:
    # Some R4 columns are DATETIME; a birth date never has a meaningful time part.
    if isinstance(value, datetime):
        return value.date()
    return value


def _details_from_row(row: Row) -> PatientDetails:
    m = row._mapping
    nhs = _clean(m["NHSNumber"])
    record = PatientRecord(
        id=m["PatientID"],
        chart_number=_clean(m["ChartNumber"]),
        family_name=_clean(m["LastName"]) or "",
        given_name=_clean(m["FirstName"]) or "",
        birth_date=_birth_date(m["BirthDate"]),
        sex=_sex(m["Sex"]),
        other_ids=(nhs,) if nhs else (),
    )
    address = Address(
        line1=_clean(m["AddressLine1"]),
        line2=_clean(m["AddressLine2"]),
        town=_clean(m["Town"]),
        county=_clean(m["County"]),
        postcode=_clean(m["Postcode"]),
    )
    return PatientDetails(
        record=record,
        title=_clean(m["Title"]),
        middle_name=_clean(m["MiddleName"]),
        preferred_name=_clean(m["PreferredName"]),
        address=None if address == Address() else address,
        contact=Contact(
            home_phone=_clean(m["HomePhone"]),
            work_phone=_clean(m["WorkPhone"]),
            mobile_phone=_clean(m["MobilePhone"]),
            email=_clean(m["Email"]),
        ),
    )


def iter_patient_batches(
    engine: Engine, batch_size: int = DEFAULT_BATCH_SIZE, *, include_inactive: bool = False
) -> Iterator[list[PatientDetails]]:
    """All patients (without medical history), one page of at most `batch_size` at a time."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    last_id: int | None = None
    while True:
        query = select(*_PATIENT_COLUMNS).order_by(patients.c.PatientID).limit(batch_size)
        if last_id is not None:
            query = query.where(patients.c.PatientID > last_id)
        if not include_inactive:
            query = query.where(patients.c.Active != 0)
        with engine.connect() as conn:
            page = [_details_from_row(row) for row in conn.execute(query)]
        if not page:
            return
        yield page
        if len(page) < batch_size:
            return
        last_id = page[-1].record.id


def iter_patient_records(
    engine: Engine, batch_size: int = DEFAULT_BATCH_SIZE, *, include_inactive: bool = False
) -> Iterator[PatientRecord]:
    """Every patient as a `PatientRecord`, streamed page by page."""
    for page in iter_patient_batches(engine, batch_size, include_inactive=include_inactive):
        for details in page:
            yield details.record


def get_patient(engine: Engine, patient_id: int) -> PatientDetails | None:
    """One patient with medical history, oldest entry first; None if R4 has no such patient."""
    with engine.connect() as conn:
        row = conn.execute(
            select(*_PATIENT_COLUMNS).where(patients.c.PatientID == patient_id)
        ).first()
        if row is None:
            return None
        history = conn.execute(
            select(
                questionnaire_questions.c.QuestionText,
                questionnaire_answers.c.AnswerText,
                medical_history.c.Notes,
                medical_history.c.RecordedAt,
            )
            .select_from(
                medical_history.join(questionnaire_questions).outerjoin(questionnaire_answers)
            )
            .where(medical_history.c.PatientID == patient_id)
            .order_by(medical_history.c.RecordedAt, medical_history.c.HistoryID)
        ).all()
    entries = tuple(
        MedicalHistoryEntry(
            question=h.QuestionText,
            answer=_clean(h.AnswerText),
            notes=_clean(h.Notes),
            recorded_at=h.RecordedAt,
        )
        for h in history
    )
    return replace(_details_from_row(row), medical_history=entries)


def get_patient_record(engine: Engine, patient_id: int) -> PatientRecord | None:
    details = get_patient(engine, patient_id)
    return details.record if details else None


def _search_date(word: str) -> date | None:
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y"):
        try:
            return datetime.strptime(word, fmt).date()
        except ValueError:
            continue
    return None


def _word_condition(word: str) -> ColumnElement[bool]:
    # LIKE with escaped wildcards: a typed "%" or "_" is a character, not a pattern.
    escaped = word.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    prefix = f"{escaped}%"
    options: list[ColumnElement[bool]] = [
        func.lower(patients.c.LastName).like(prefix, escape="\\"),
        func.lower(patients.c.FirstName).like(prefix, escape="\\"),
        func.lower(patients.c.PreferredName).like(prefix, escape="\\"),
        func.lower(func.trim(patients.c.ChartNumber)) == word.lower(),
    ]
    if word.isdigit() and len(word) < 10:
        options.append(patients.c.PatientID == int(word))
    born = _search_date(word)
    if born is not None:
        options.append(patients.c.BirthDate == born)
    return or_(*options)


def find_patient_records(engine: Engine, text: str, limit: int = 20) -> list[PatientRecord]:
    """Active patients matching every word of `text`: a name prefix, the chart number, the R4
    id or the birth date (YYYY-MM-DD or DD/MM/YYYY). For staff picking a patient by hand."""
    words = text.split()[:6]
    if not words or limit < 1:
        return []
    query = (
        select(*_PATIENT_COLUMNS)
        .where(patients.c.Active != 0, *(_word_condition(w) for w in words))
        .order_by(patients.c.LastName, patients.c.FirstName, patients.c.PatientID)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [_details_from_row(row).record for row in conn.execute(query)]


def _distinct_texts(engine: Engine, column: Column[str]) -> list[str]:
    with engine.connect() as conn:
        values = conn.execute(select(column).distinct()).scalars()
        return sorted({v.strip() for v in values if v and v.strip()})


def questionnaire_question_texts(engine: Engine) -> list[str]:
    """Every distinct questionnaire question defined by the practice (no patient data)."""
    return _distinct_texts(engine, questionnaire_questions.c.QuestionText)


def questionnaire_answer_texts(engine: Engine) -> list[str]:
    """Every distinct pre-set answer ('Yes', 'True', ...). Reads the answers table only, never
    the per-patient notes, so the result carries no patient data."""
    return _distinct_texts(engine, questionnaire_answers.c.AnswerText)
