"""Synthetic practice data for tests, benchmarks and demos (never real patients).

The generator aims at the awkward shapes a real R4 holds: accented and apostrophised names,
blank strings and padding where values are missing, patients without an address or birth date,
unusual sex codes, archived patients and gaps in the id sequence. It writes the tables the
engine's mapping names (`r4.mapping`), so the same data fills a `sys2000`- or an
`NG_R4_Sys2000`-shaped SQLite database; fields the mapping leaves out are simply not written.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select, update

from r4.database import r4_tables
from r4.mapping import R4Mapping

GIVEN_NAMES = (
    "José",
    "Zoë",
    "Chloé",
    "Björn",
    "Łukasz",
    "Siobhán",
    "Renée",
    "Ægir",
    "Noémie",
    "Søren",
    "Anaïs",
    "Jürgen",
    "Mary-Jane",
    "Olivia",
    "Mohammed",
    "Amelia",
    "Oliver",
    "Ifeoma",
    "Hamish",
    "Nuala",
    "Dương",
    "Ana Sofía",
)
FAMILY_NAMES = (
    "Müller",
    "O'Brien",
    "García Márquez",
    "Nguyễn",
    "Ó Súilleabháin",
    "Smith",
    "Jones",
    "Dvořák",
    "Ferreira-Leão",
    "MacDonald",
    "van der Berg",
    "Øvergård",
    "Williams",
    "Brown",
    "Łęcka",
    "Çelik",
    "Kowalski",
    "Taylor",
    "D'Arcy",
    "St. John",
)
TOWNS = ("Llanfair", "Bristol", "Königsbrück", "Leeds", "St Ives", "Newcastle upon Tyne")
QUESTIONS = (
    "Are you taking any medication?",
    "Do you have any allergies?",
    "Have you ever had a reaction to local anaesthetic?",
    "Are you pregnant or breastfeeding?",
    "Do you smoke?",
    "Do you have a heart condition?",
    "Have you had rheumatic fever?",
    "Are you diabetic?",
)
ANSWERS = ("Yes", "No", "True", "False", "Don't know", "N/A")
NOTES = ("Penicillin", "Metformin 500mg twice daily", "Stopped 2019", "Asthma inhaler", "")


# A mapping with every optional part mapped (address, NHS number, active flag, medical history),
# for tests of what those parts do. The extra names are this test kit's own, not R4's.
FULL_TEST_MAPPING = R4Mapping(
    middle_name="MiddleName",
    preferred_name="KnownAs",
    nhs_number="NHSNo",
    address_line1="Address1",
    address_line2="Address2",
    town="Town",
    county="County",
    postcode="PostCode",
    home_phone="HomeTel",
    work_phone="WorkTel",
    active="IsActive",
    questions_table="TestQuestions",
    question_id="QuestionCode",
    question_text="Question",
    answers_table="TestAnswers",
    answer_id="AnswerCode",
    answer_text="Answer",
    history_table="TestPatientAnswers",
    history_id="EntryCode",
    history_patient="PatientCode",
    history_question="QuestionCode",
    history_answer="AnswerCode",
    history_notes="Notes",
    history_recorded_at="RecordedAt",
)


@dataclass(frozen=True)
class PracticeSummary:
    patients: int  # rows written
    active_patients: int  # rows with a usable R4 patient id and not archived
    history_entries: int
    first_id: int
    last_id: int
    without_id: int = 0  # rows whose text id is not digits (NG_R4_Sys2000): never read


def _maybe(rng: random.Random, value: Any, missing: float) -> Any:
    # Missing values come as NULL, '' or padding, as R4 has all three.
    if rng.random() >= missing:
        return value
    return rng.choice((None, "", "   "))


def _patient_fields(rng: random.Random, patient_id: int) -> dict[str, Any]:
    """One patient by logical field name (`r4.mapping.PATIENT_FIELDS`)."""
    has_address = rng.random() > 0.15
    birth = date(1920, 1, 1) + timedelta(days=rng.randrange(0, 36500))
    return {
        "patient_id": patient_id,
        "title": _maybe(rng, rng.choice(("Mr", "Mrs", "Ms", "Dr", "Mx")), 0.3),
        "forename": _maybe(rng, rng.choice(GIVEN_NAMES), 0.02),
        "middle_name": _maybe(rng, rng.choice(GIVEN_NAMES), 0.7),
        "surname": _maybe(
            rng, rng.choice(FAMILY_NAMES) + (" " if rng.random() < 0.05 else ""), 0.01
        ),
        "preferred_name": None,
        "birth_date": None if rng.random() < 0.03 else birth,
        "sex": rng.choice(("M", "F", "F", "M", "m", "U", "O", None, " ")),
        "nhs_number": _maybe(rng, f"{rng.randrange(10**9, 10**10)}", 0.4),
        "address_line1": f"{rng.randrange(1, 300)} {rng.choice(('High St', 'Rue de l’Église'))}"
        if has_address
        else None,
        "address_line2": _maybe(rng, "Flat 2", 0.8) if has_address else None,
        "town": rng.choice(TOWNS) if has_address else None,
        "county": None,
        "postcode": _maybe(rng, f"BS{rng.randrange(1, 99)} {rng.randrange(1, 9)}AB", 0.1)
        if has_address
        else None,
        "home_phone": _maybe(
            rng, f"0117 {rng.randrange(100, 999)} {rng.randrange(1000, 9999)}", 0.5
        ),
        "work_phone": None,
        "mobile_phone": _maybe(rng, f"07{rng.randrange(100000000, 999999999)}", 0.3),
        "email": _maybe(rng, f"patient{patient_id}@example.org", 0.5),
        "active": 0 if rng.random() < 0.02 else 1,
    }


def patient_rows(
    mapping: R4Mapping, fields: dict[str, Any], rng: random.Random | None = None
) -> dict[str, dict[str, Any]]:
    """A patient given by logical fields as one row per mapped table (table -> column -> value).

    A text id column holds the id as text; a person table is joined by a fresh GUID. The
    chart number, when it is its own column, is the id as text unless `fields` names one.
    """
    rng = rng or random.Random()
    rows: dict[str, dict[str, Any]] = {}
    columns = mapping.patient_columns()
    for name, (table, column) in columns.items():
        if name == "active" and name not in fields:
            value: Any = 1
        elif name == "chart_number":
            if columns[name] == columns["patient_id"]:
                continue
            value = fields.get("chart_number", str(fields["patient_id"]))
        else:
            value = fields.get(name)
        if name == "patient_id" and mapping.patient_id_is_text and value is not None:
            value = str(value)
        rows.setdefault(table, {})[column] = value
    if mapping.person_table:
        assert mapping.patient_join and mapping.person_join
        key = str(uuid.UUID(int=rng.getrandbits(128)))
        rows.setdefault(mapping.patients_table, {})[mapping.patient_join] = key
        rows.setdefault(mapping.person_table, {})[mapping.person_join] = key
    return rows


def create_tables(engine: Engine) -> None:
    """Create the tables the engine's mapping names (SQLite stand-ins for R4)."""
    r4_tables(engine).patients.metadata.create_all(engine)


def insert_patients(engine: Engine, patients: list[dict[str, Any]], seed: int = 0) -> None:
    """Insert patients given by logical field name into the engine's mapped tables (created
    if missing)."""
    create_tables(engine)
    t = r4_tables(engine)
    metadata = t.patients.metadata
    rng = random.Random(seed)
    per_table: dict[str, list[dict[str, Any]]] = {}
    for fields in patients:
        for table, row in patient_rows(t.mapping, fields, rng).items():
            per_table.setdefault(table, []).append(row)
    with engine.begin() as conn:
        for table, rows in per_table.items():
            # Each table gets one column set: fill the gaps of rows without a value.
            names = {c for r in rows for c in r}
            full = [{c: r.get(c) for c in names} for r in rows]
            conn.execute(insert(_table(metadata, table)), full)


def _table(metadata: Any, name: str) -> Any:
    for table in metadata.tables.values():
        if table.name == name:
            return table
    raise KeyError(name)


def _chunks(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def generate_practice(
    engine: Engine,
    patient_count: int = 1000,
    *,
    seed: int = 0,
    first_id: int = 1,
    history_per_patient: float = 2.0,
    chunk_size: int = 5000,
) -> PracticeSummary:
    """Create the tables the engine's mapping names (if missing) and fill them with
    `patient_count` synthetic patients; only mapped fields are written.

    With a text id column (NG_R4_Sys2000), about 3 % of rows get no usable id (blank or not
    digits), as on real installs. Inserts in chunks so that 100,000 patients never sit in
    memory at once.
    """
    rng = random.Random(seed)
    t = r4_tables(engine)
    mapping = t.mapping
    create_tables(engine)
    metadata = t.patients.metadata
    if t.questions is not None:
        with engine.begin() as conn:
            conn.execute(
                insert(t.questions),
                [
                    {mapping.question_id: i, mapping.question_text: q}
                    for i, q in enumerate(QUESTIONS, start=1)
                ],
            )
            if t.answers is not None:
                conn.execute(
                    insert(t.answers),
                    [
                        {mapping.answer_id: i, mapping.answer_text: a}
                        for i, a in enumerate(ANSWERS, start=1)
                    ],
                )

    counts = {"active": 0, "history": 0, "last": first_id, "without_id": 0}
    history_id = 0
    has_active = mapping.active is not None

    def rows() -> Iterator[dict[str, Any]]:
        patient_id = first_id
        for _ in range(patient_count):
            fields = _patient_fields(rng, patient_id)
            usable = True
            if mapping.patient_id_is_text and rng.random() < 0.03:
                fields["patient_id"] = rng.choice((None, "", f"X{patient_id}", "  "))
                usable = False
                counts["without_id"] += 1
            if usable and (fields["active"] or not has_active):
                counts["active"] += 1
            counts["last"] = patient_id
            yield fields
            patient_id += rng.choice((1, 1, 1, 2, 7))  # deleted patients leave gaps

    for chunk in _chunks(rows(), chunk_size):
        per_table: dict[str, list[dict[str, Any]]] = {}
        history: list[dict[str, Any]] = []
        for fields in chunk:
            for table, row in patient_rows(mapping, fields, rng).items():
                per_table.setdefault(table, []).append(row)
            if t.history is None or not isinstance(fields["patient_id"], int):
                continue
            for _ in range(rng.randrange(0, int(history_per_patient * 2) + 1)):
                history_id += 1
                history.append(
                    {
                        mapping.history_id: history_id,
                        mapping.history_patient: fields["patient_id"],
                        mapping.history_question: rng.randrange(1, len(QUESTIONS) + 1),
                        mapping.history_answer: rng.choice((None, *range(1, len(ANSWERS) + 1))),
                        mapping.history_notes: rng.choice(NOTES) or None,
                        mapping.history_recorded_at: datetime(2015, 1, 1)
                        + timedelta(minutes=rng.randrange(5_000_000)),
                    }
                )
        with engine.begin() as conn:
            for table, table_rows in per_table.items():
                conn.execute(insert(_table(metadata, table)), table_rows)
            if history:
                assert t.history is not None
                history = [{k: v for k, v in h.items() if k} for h in history]
                conn.execute(insert(t.history), history)
        counts["history"] += len(history)

    return PracticeSummary(
        patients=patient_count,
        active_patients=counts["active"],
        history_entries=counts["history"],
        first_id=first_id,
        last_id=counts["last"],
        without_id=counts["without_id"],
    )


def update_patient(engine: Engine, patient_id: int, **fields: Any) -> None:
    """Change a patient's fields, given by logical name, in the engine's mapped tables."""
    t = r4_tables(engine)
    columns = t.mapping.patient_columns()
    metadata = t.patients.metadata
    with engine.begin() as conn:
        key = conn.execute(
            select(*_join_keys(t)).select_from(t.source).where(t.id_equals(patient_id))
        ).first()
        if key is None:
            raise LookupError(f"no R4 patient {patient_id}")
        for name, value in fields.items():
            table_name, column = columns[name]
            table = _table(metadata, table_name)
            if t.mapping.person_table:
                join = (
                    t.mapping.patient_join
                    if table_name == t.mapping.patients_table
                    else t.mapping.person_join
                )
                where = table.c[join] == key[0]
            else:
                where = t.id_equals(patient_id)
            conn.execute(update(table).where(where).values({column: value}))


def _join_keys(t: Any) -> list[Any]:
    if not t.mapping.person_table:
        return [t.patient_id]
    return [t.patients.c[t.mapping.patient_join]]


def insert_appointments(engine: Engine, appointments: list[tuple[int, Any, bool]]) -> None:
    """Write (R4 patient id, start, cancelled) rows into the mapped appointment book,
    creating it if missing; the patient column gets whatever the mapping says it holds
    (the id itself, or NG's Patient.RecordID of that patient)."""
    from r4.appointments import appointments_table  # r4.database's tables: built once

    t = r4_tables(engine)
    m = t.mapping
    book = appointments_table(t)
    book.create(engine, checkfirst=True)
    key = t.patients.c[m.appointment_patient_key or ""]
    rows = []
    with engine.connect() as conn:
        for patient_id, starts_at, cancelled in appointments:
            value = conn.execute(
                select(key).select_from(t.source).where(t.id_equals(patient_id))
            ).scalar_one()
            row = {m.appointment_patient: value, m.appointment_start: starts_at}
            if m.appointment_cancelled:
                row[m.appointment_cancelled] = 1 if cancelled else 0
            rows.append(row)
    with engine.begin() as conn:
        conn.execute(insert(book), rows)
