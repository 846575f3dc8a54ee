"""Synthetic practice data for tests, benchmarks and demos (never real patients).

The generator aims at the awkward shapes a real R4 holds: accented and apostrophised names,
blank strings and padding where values are missing, patients without an address or birth date,
unusual sex codes, archived patients and gaps in the id sequence.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert

from r4.schema import (
    medical_history,
    metadata,
    patients,
    questionnaire_answers,
    questionnaire_questions,
)

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


@dataclass(frozen=True)
class PracticeSummary:
    patients: int
    active_patients: int
    history_entries: int
    first_id: int
    last_id: int


def _maybe(rng: random.Random, value: Any, missing: float) -> Any:
    # Missing values come as NULL, '' or padding, as R4 has all three.
    if rng.random() >= missing:
        return value
    return rng.choice((None, "", "   "))


def _patient_row(rng: random.Random, patient_id: int) -> dict[str, Any]:
    has_address = rng.random() > 0.15
    birth = date(1920, 1, 1) + timedelta(days=rng.randrange(0, 36500))
    return {
        "PatientID": patient_id,
        "ChartNumber": _maybe(rng, f"C{patient_id:07d}", 0.05),
        "Title": _maybe(rng, rng.choice(("Mr", "Mrs", "Ms", "Dr", "Mx")), 0.3),
        "FirstName": _maybe(rng, rng.choice(GIVEN_NAMES), 0.02),
        "MiddleName": _maybe(rng, rng.choice(GIVEN_NAMES), 0.7),
        "LastName": _maybe(
            rng, rng.choice(FAMILY_NAMES) + (" " if rng.random() < 0.05 else ""), 0.01
        ),
        "PreferredName": None,
        "BirthDate": None if rng.random() < 0.03 else birth,
        "Sex": rng.choice(("M", "F", "F", "M", "m", "U", "O", None, " ")),
        "NHSNumber": _maybe(rng, f"{rng.randrange(10**9, 10**10)}", 0.4),
        "AddressLine1": f"{rng.randrange(1, 300)} {rng.choice(('High St', 'Rue de l’Église'))}"
        if has_address
        else None,
        "AddressLine2": _maybe(rng, "Flat 2", 0.8) if has_address else None,
        "Town": rng.choice(TOWNS) if has_address else None,
        "County": None,
        "Postcode": _maybe(rng, f"BS{rng.randrange(1, 99)} {rng.randrange(1, 9)}AB", 0.1)
        if has_address
        else None,
        "HomePhone": _maybe(
            rng, f"0117 {rng.randrange(100, 999)} {rng.randrange(1000, 9999)}", 0.5
        ),
        "WorkPhone": None,
        "MobilePhone": _maybe(rng, f"07{rng.randrange(100000000, 999999999)}", 0.3),
        "Email": _maybe(rng, f"patient{patient_id}@example.org", 0.5),
        "Active": 0 if rng.random() < 0.02 else 1,
    }


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
    """Create the R4 tables (if missing) and fill them with `patient_count` synthetic patients.

    Inserts in chunks so that 100,000 patients never sit in memory at once.
    """
    rng = random.Random(seed)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(questionnaire_questions),
            [{"QuestionID": i, "QuestionText": q} for i, q in enumerate(QUESTIONS, start=1)],
        )
        conn.execute(
            insert(questionnaire_answers),
            [{"AnswerID": i, "AnswerText": a} for i, a in enumerate(ANSWERS, start=1)],
        )

    counts = {"active": 0, "history": 0, "last": first_id}
    history_id = 0

    def rows() -> Iterator[dict[str, Any]]:
        patient_id = first_id
        for _ in range(patient_count):
            row = _patient_row(rng, patient_id)
            counts["active"] += row["Active"]
            counts["last"] = patient_id
            yield row
            patient_id += rng.choice((1, 1, 1, 2, 7))  # deleted patients leave gaps

    for chunk in _chunks(rows(), chunk_size):
        history: list[dict[str, Any]] = []
        for row in chunk:
            for _ in range(rng.randrange(0, int(history_per_patient * 2) + 1)):
                history_id += 1
                history.append(
                    {
                        "HistoryID": history_id,
                        "PatientID": row["PatientID"],
                        "QuestionID": rng.randrange(1, len(QUESTIONS) + 1),
                        "AnswerID": rng.choice((None, *range(1, len(ANSWERS) + 1))),
                        "Notes": rng.choice(NOTES) or None,
                        "RecordedAt": datetime(2015, 1, 1)
                        + timedelta(minutes=rng.randrange(5_000_000)),
                    }
                )
        with engine.begin() as conn:
            conn.execute(insert(patients), chunk)
            if history:
                conn.execute(insert(medical_history), history)
        counts["history"] += len(history)

    return PracticeSummary(
        patients=patient_count,
        active_patients=counts["active"],
        history_entries=counts["history"],
        first_id=first_id,
        last_id=counts["last"],
    )
