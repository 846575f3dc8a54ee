from __future__ import annotations

from datetime import date
from urllib.parse import unquote_plus

import pytest
from sqlalchemy import event, insert

from r4.database import create_r4_engine, odbc_connection_string, production_url, r4_tables
from r4.patients import (
    get_patient,
    get_patient_record,
    iter_patient_batches,
    iter_patient_records,
    questionnaire_answer_texts,
    questionnaire_question_texts,
)
from r4.records import PatientRecord
from testkit.sample_data import (
    ANSWERS,
    FULL_TEST_MAPPING,
    QUESTIONS,
    create_tables,
    generate_practice,
    insert_patients,
)


def test_production_url_is_windows_auth_through_pyodbc():
    assert production_url() == (
        "mssql+pyodbc:///?odbc_connect="
        "DRIVER%3D%7BSQL+Server+Native+Client+11.0%7D%3BSERVER%3D.%3BDATABASE%3Dsys2000"
        "%3BTrusted_Connection%3Dyes"
    )
    assert odbc_connection_string("ODBC Driver 17 for SQL Server") == (
        "DRIVER={ODBC Driver 17 for SQL Server};SERVER=.;DATABASE=sys2000;Trusted_Connection=yes"
    )
    url = production_url(driver="SQL Server Native Client 9.0")
    assert unquote_plus(url.split("odbc_connect=")[1]) == (
        "DRIVER={SQL Server Native Client 9.0};SERVER=.;DATABASE=sys2000;Trusted_Connection=yes"
    )


def test_engine_hides_parameters_from_errors(tmp_path):
    engine = create_r4_engine(f"sqlite:///{tmp_path / 'x.db'}")
    create_tables(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql('CREATE UNIQUE INDEX one_code ON "Patients" ("PatientCode")')
    insert_patients(engine, [{"patient_id": 1, "surname": "Secretname"}])
    with pytest.raises(Exception) as info:
        insert_patients(engine, [{"patient_id": 1, "surname": "Secretname"}])  # duplicate key
    assert "Secretname" not in str(info.value)


def test_batches_cover_every_active_patient_once_whatever_the_size(practice):
    engine, summary = practice
    everyone = [r.id for r in iter_patient_records(engine, batch_size=10_000)]
    assert len(everyone) == summary.active_patients
    assert everyone == sorted(set(everyone))
    for size in (1, 7, 100, summary.active_patients):
        pages = list(iter_patient_batches(engine, size))
        assert all(len(p) <= size for p in pages)
        assert [d.record.id for p in pages for d in p] == everyone
    with_inactive = list(iter_patient_records(engine, 50, include_inactive=True))
    assert len(with_inactive) == summary.patients


def test_pages_are_separate_bounded_queries(practice):
    engine, _ = practice
    statements: list[str] = []
    event.listen(
        engine, "before_cursor_execute", lambda conn, cursor, stmt, *a: statements.append(stmt)
    )
    pages = iter_patient_batches(engine, 100)
    next(pages)
    assert len(statements) == 1 and "LIMIT" in statements[0]
    next(pages)
    assert len(statements) == 2 and "PatientCode" in statements[1] and ">" in statements[1]


def test_awkward_data_is_read_faithfully(practice):
    engine, _ = practice
    details = [d for p in iter_patient_batches(engine, 1000) for d in p]
    assert any(d.address is None for d in details), "patients without address are valid"
    assert any(d.record.birth_date is None for d in details)
    assert any(any(ch in d.record.family_name for ch in "üéóřłęçØ") for d in details)
    assert {d.record.sex for d in details} <= {"M", "F", "O", None}
    for d in details:
        r = d.record
        assert isinstance(r, PatientRecord)
        assert r.family_name == r.family_name.strip()
        assert r.chart_number is None or r.chart_number.strip() == r.chart_number != ""
        assert d.contact.email is None or "@" in d.contact.email


def test_get_patient_with_history(tmp_path):
    mapping = FULL_TEST_MAPPING.model_copy(update={"chart_number": "ChartNo"})
    engine = create_r4_engine(f"sqlite:///{tmp_path / 'r4.db'}", mapping)
    generate_practice(engine, 3, seed=1, history_per_patient=0)
    insert_patients(
        engine,
        [
            {
                "patient_id": 900,
                "chart_number": " C900 ",
                "forename": "Zoë",
                "surname": "Ó Súilleabháin",
                "birth_date": date(1970, 2, 3),
                "sex": "f",
                "nhs_number": "4857773456",
                "email": "",
                "home_phone": "   ",
            }
        ],
    )
    history = r4_tables(engine).history
    with engine.begin() as conn:
        conn.execute(
            insert(history),
            [
                {
                    "EntryCode": 1,
                    "PatientCode": 900,
                    "QuestionCode": 2,
                    "AnswerCode": 1,
                    "Notes": "Latex",
                },
                {
                    "EntryCode": 2,
                    "PatientCode": 900,
                    "QuestionCode": 5,
                    "AnswerCode": None,
                    "Notes": None,
                },
            ],
        )
    d = get_patient(engine, 900)
    assert d is not None
    assert d.record == PatientRecord(
        900, "C900", "Ó Súilleabháin", "Zoë", date(1970, 2, 3), "F", ("4857773456",)
    )
    assert d.address is None and d.contact.email is None and d.contact.home_phone is None
    assert [(h.question, h.answer, h.notes) for h in d.medical_history] == [
        (QUESTIONS[1], "Yes", "Latex"),
        (QUESTIONS[4], None, None),
    ]
    assert get_patient(engine, 12345) is None
    assert get_patient_record(engine, 900) == d.record


def test_questionnaire_texts_are_practice_configuration_only(practice):
    engine, _ = practice
    assert questionnaire_question_texts(engine) == sorted(QUESTIONS)
    answers = questionnaire_answer_texts(engine)
    assert answers == sorted(ANSWERS)
    assert "Penicillin" not in answers  # notes never appear
