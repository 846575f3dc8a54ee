"""Reading patients, their details and medical history out of R4.

Every query is built from the engine's mapping (`r4.mapping`, `r4.database.r4_tables`); the
`*_query` functions only build statements, so a test compiles each one for SQL Server 2008.
Only constructs SQL Server 2008 has: `TOP` (never OFFSET/FETCH), `LTRIM(RTRIM(x))` (no TRIM).
Unmapped columns read as None.

Whole-practice reads page through the patients table by the id column (keyset pagination:
`WHERE id > :last ORDER BY id` with `TOP n` on SQL Server). Each page is its own
short query on its own pooled connection, so memory holds one page whatever the practice
size and we never keep a long-running cursor or read transaction open on the practice's
live database. Keyset rather than OFFSET because SQL Server 2008 has no OFFSET/FETCH and
because OFFSET rescans skipped rows on every page.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, Row, Select, func, or_, select

from r4.database import r4_tables
from r4.mapping import R4Tables
from r4.records import PatientRecord

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


def _text(value: Any) -> str | None:
    # Chart numbers may be int columns (sys2000's PatientCode); the id rule formats text.
    return _clean(value if value is None or isinstance(value, str) else str(value))


def patient_id_of(value: Any) -> int | None:
    """The R4 patient id in an id column's value: an int, or text of 1-9 digits; else None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    text = str(value).strip()
    if text.isascii() and text.isdigit() and len(text) <= 9 and int(text) > 0:
        return int(text)
    return None


def _details_from_row(row: Row, patient_id: int) -> PatientDetails:
    # Unmapped fields are not in the row: look each name up once in the row's fields rather
    # than by a mapping miss, which is slow (it goes through SQLAlchemy's key fallback).
    values = dict(zip(row._fields, row, strict=True))
    get = values.get

    nhs = _clean(get("nhs_number"))
    record = PatientRecord(
        id=patient_id,
        chart_number=_text(get("chart_number")),
        family_name=_clean(get("surname")) or "",
        given_name=_clean(get("forename")) or "",
        birth_date=_birth_date(get("birth_date")),
        sex=_sex(get("sex")),
        other_ids=(nhs,) if nhs else (),
    )
    address = Address(
        line1=_clean(get("address_line1")),
        line2=_clean(get("address_line2")),
        town=_clean(get("town")),
        county=_clean(get("county")),
        postcode=_clean(get("postcode")),
    )
    return PatientDetails(
        record=record,
        title=_clean(get("title")),
        middle_name=_clean(get("middle_name")),
        preferred_name=_clean(get("preferred_name")),
        address=None if address == Address() else address,
        contact=Contact(
            home_phone=_clean(get("home_phone")),
            work_phone=_clean(get("work_phone")),
            mobile_phone=_clean(get("mobile_phone")),
            email=_clean(get("email")),
        ),
    )


def _rows_to_details(rows: Any) -> tuple[list[PatientDetails], int, Any]:
    """Details of the rows with a usable id, how many rows were read, the last raw key."""
    found: list[PatientDetails] = []
    count = 0
    last_key: Any = None
    for row in rows:
        count += 1
        last_key = row._mapping["patient_id"]
        patient_id = patient_id_of(last_key)
        if patient_id is not None:
            found.append(_details_from_row(row, patient_id))
    return found, count, last_key


def _patient_select(t: R4Tables) -> Select[Any]:
    return select(*(column.label(name) for name, column in t.columns.items())).select_from(t.source)


def active_only(t: R4Tables) -> list[ColumnElement[bool]]:
    """The condition that leaves archived patients out (none when `active` is unmapped)."""
    column = t.columns.get("active")
    return [] if column is None else [column != 0]


def patient_page_query(
    t: R4Tables, batch_size: int, after: Any = None, *, include_inactive: bool = False
) -> Select[Any]:
    """One keyset page: at most `batch_size` patients with an id column above `after`."""
    query = (
        _patient_select(t).where(t.patient_id.is_not(None)).order_by(t.patient_id).limit(batch_size)
    )
    if after is not None:
        query = query.where(t.patient_id > after)
    if not include_inactive:
        query = query.where(*active_only(t))
    return query


def patient_query(t: R4Tables, patient_id: int) -> Select[Any]:
    return _patient_select(t).where(t.id_equals(patient_id))


def history_query(t: R4Tables, patient_id: int) -> Select[Any] | None:
    """The patient's medical history, oldest first; None when no history table is mapped."""
    if t.history is None or t.questions is None:
        return None
    h, m = t.history_columns, t.mapping
    question_text = t.questions.c[m.question_text]
    source = t.history.join(t.questions, h["history_question"] == t.questions.c[m.question_id])
    answer_text: ColumnElement[Any] | None = None
    if t.answers is not None and "history_answer" in h:
        source = source.outerjoin(t.answers, h["history_answer"] == t.answers.c[m.answer_id])
        answer_text = t.answers.c[m.answer_text]
    columns: list[ColumnElement[Any]] = [question_text.label("question")]
    if answer_text is not None:
        columns.append(answer_text.label("answer"))
    for name, label in (("history_notes", "notes"), ("history_recorded_at", "recorded_at")):
        if name in h:
            columns.append(h[name].label(label))
    patient_key: Any = str(patient_id) if m.patient_id_is_text else patient_id
    order = [h[n] for n in ("history_recorded_at", "history_id") if n in h]
    return (
        select(*columns)
        .select_from(source)
        .where(h["history_patient"] == patient_key)
        .order_by(*order)
    )


def iter_patient_batches(
    engine: Engine, batch_size: int = DEFAULT_BATCH_SIZE, *, include_inactive: bool = False
) -> Iterator[list[PatientDetails]]:
    """All patients (without medical history), one page of at most `batch_size` at a time.

    Archived patients (a mapped `active` column equal to 0) only with `include_inactive`;
    rows without a usable R4 patient id are skipped (a page may then hold fewer)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    t = r4_tables(engine)
    last_key: Any = None
    while True:
        query = patient_page_query(t, batch_size, last_key, include_inactive=include_inactive)
        with engine.connect() as conn:
            page, read, last_key = _rows_to_details(conn.execute(query))
        if page:
            yield page
        if read < batch_size:
            return


def iter_patient_records(
    engine: Engine, batch_size: int = DEFAULT_BATCH_SIZE, *, include_inactive: bool = False
) -> Iterator[PatientRecord]:
    """Every patient as a `PatientRecord`, streamed page by page."""
    for page in iter_patient_batches(engine, batch_size, include_inactive=include_inactive):
        for details in page:
            yield details.record


def get_patient(engine: Engine, patient_id: int) -> PatientDetails | None:
    """One patient with medical history, oldest entry first; None if R4 has no such patient."""
    t = r4_tables(engine)
    with engine.connect() as conn:
        row = conn.execute(patient_query(t, patient_id)).first()
        if row is None:
            return None
        query = history_query(t, patient_id)
        history = [] if query is None else conn.execute(query).all()
    entries = tuple(
        MedicalHistoryEntry(
            question=h._mapping["question"],
            answer=_clean(h._mapping.get("answer")),
            notes=_clean(h._mapping.get("notes")),
            recorded_at=h._mapping.get("recorded_at"),
        )
        for h in history
    )
    return replace(_details_from_row(row, patient_id), medical_history=entries)


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


def _word_condition(t: R4Tables, word: str) -> ColumnElement[bool]:
    # LIKE with escaped wildcards: a typed "%" or "_" is a character, not a pattern.
    escaped = word.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    prefix = f"{escaped}%"
    c = t.columns
    options: list[ColumnElement[bool]] = [
        func.lower(c[name]).like(prefix, escape="\\")
        for name in ("surname", "forename", "preferred_name")
        if name in c
    ]
    if "chart_number" in c and c["chart_number"] is not t.patient_id:
        # SQL Server 2008 has no TRIM; LTRIM(RTRIM(x)) works on every version.
        chart = func.lower(func.ltrim(func.rtrim(c["chart_number"])))
        options.append(chart == word.lower())
    if word.isdigit() and len(word) < 10 and int(word) > 0:
        options.append(t.id_equals(int(word)))
    born = _search_date(word)
    if born is not None and "birth_date" in c:
        options.append(c["birth_date"] == born)
    return or_(*options) if options else t.patient_id.is_(None)


def search_query(t: R4Tables, text: str, limit: int = 20) -> Select[Any] | None:
    words = text.split()[:6]
    if not words or limit < 1:
        return None
    c = t.columns
    order = [c[n] for n in ("surname", "forename") if n in c] + [t.patient_id]
    return (
        _patient_select(t)
        .where(*active_only(t), *(_word_condition(t, w) for w in words))
        .order_by(*order)
        .limit(limit)
    )


def find_patient_records(engine: Engine, text: str, limit: int = 20) -> list[PatientRecord]:
    """Active patients matching every word of `text`: a name prefix, the chart number, the R4
    id or the birth date (YYYY-MM-DD or DD/MM/YYYY). For staff picking a patient by hand."""
    query = search_query(r4_tables(engine), text, limit)
    if query is None:
        return []
    with engine.connect() as conn:
        page, _, _ = _rows_to_details(conn.execute(query))
    return [details.record for details in page]


def distinct_text_query(t: R4Tables, which: str, limit: int | None = None) -> Select[Any] | None:
    """Distinct questionnaire question or pre-set answer texts; None when not mapped."""
    table, column = (
        (t.questions, t.mapping.question_text)
        if which == "questions"
        else (t.answers, t.mapping.answer_text)
    )
    if table is None or not column:
        return None
    query = select(table.c[column]).distinct()
    return query.limit(limit) if limit else query


def _distinct_texts(engine: Engine, which: str) -> list[str]:
    query = distinct_text_query(r4_tables(engine), which)
    if query is None:
        return []
    with engine.connect() as conn:
        values = conn.execute(query).scalars()
        return sorted({v.strip() for v in values if v and v.strip()})


def questionnaire_question_texts(engine: Engine) -> list[str]:
    """Every distinct questionnaire question defined by the practice (no patient data); empty
    when the mapping names no questionnaire tables."""
    return _distinct_texts(engine, "questions")


def questionnaire_answer_texts(engine: Engine) -> list[str]:
    """Every distinct pre-set answer ('Yes', 'True', ...). Reads the answers table only, never
    the per-patient notes, so the result carries no patient data."""
    return _distinct_texts(engine, "answers")
