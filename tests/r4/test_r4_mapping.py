"""The R4 mapping: both presets read the same patients, unmapped parts are simply absent."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError
from sqlalchemy import inspect

from r4.database import create_r4_engine
from r4.mapping import R4Mapping
from r4.patients import (
    find_patient_records,
    get_patient,
    iter_patient_batches,
    iter_patient_records,
    questionnaire_question_texts,
)
from testkit.sample_data import generate_practice, insert_patients, update_patient

NG = R4Mapping(preset="NG_R4_Sys2000")


def test_default_preset_is_the_evidence():
    m = R4Mapping()
    assert (m.patients_table, m.patient_id, m.chart_number) == (
        "Patients",
        "PatientCode",
        "PatientCode",
    )
    assert (m.forename, m.surname, m.birth_date, m.sex, m.title, m.mobile_phone, m.email) == (
        "Forename",
        "Surname",
        "DOB",
        "Sex",
        "Title",
        "MobileNo",
        "Email",
    )
    assert m.address_line1 is None and m.active is None and m.history_table is None


def test_fields_override_the_preset_and_empty_means_absent():
    m = R4Mapping(preset="NG_R4_Sys2000", chart_number="Patient.ChartNumber", email="")
    assert m.patients_table == "Patient" and m.person_table == "Person"
    assert m.chart_number == "Patient.ChartNumber" and m.email is None
    assert m.patient_columns()["chart_number"] == ("Patient", "ChartNumber")
    with pytest.raises(ValidationError, match="neither patients_table"):
        R4Mapping(forename="People.Forename")
    with pytest.raises(ValidationError):
        R4Mapping(preset="sys2010")


def test_sqlite_databases_get_the_preset_shape(tmp_path):
    classic = create_r4_engine(f"sqlite:///{tmp_path / 'a.db'}")
    generate_practice(classic, 5)
    assert {c["name"] for c in inspect(classic).get_columns("Patients")} == {
        "PatientCode",
        "Title",
        "Forename",
        "Surname",
        "DOB",
        "Sex",
        "MobileNo",
        "Email",
    }
    ng = create_r4_engine(f"sqlite:///{tmp_path / 'b.db'}", NG)
    generate_practice(ng, 5)
    assert set(inspect(ng).get_table_names()) == {"Patient", "Person"}
    assert "PMSRecordID" in {c["name"] for c in inspect(ng).get_columns("Person")}


@pytest.mark.parametrize("mapping", [R4Mapping(), NG], ids=["sys2000", "NG_R4_Sys2000"])
def test_both_presets_read_every_patient_with_an_id(tmp_path, mapping):
    engine = create_r4_engine(f"sqlite:///{tmp_path / 'r4.db'}", mapping)
    summary = generate_practice(engine, 400, seed=5)
    ids = [r.id for r in iter_patient_records(engine, batch_size=37)]
    # No active flag is mapped: every row with a usable id is read, each once, in order.
    assert len(ids) == summary.patients - summary.without_id == summary.active_patients
    assert len(ids) == len(set(ids))
    if not mapping.patient_id_is_text:
        assert ids == sorted(ids)
    if mapping.patient_id_is_text:
        assert summary.without_id > 0, "the NG data has rows without a PMSRecordID"
    details = [d for page in iter_patient_batches(engine, 1000) for d in page]
    assert all(d.address is None for d in details), "no address is mapped: none is sent"
    assert all(d.record.other_ids == () for d in details)
    assert any(d.contact.mobile_phone for d in details)
    one = details[10]
    assert one.record.chart_number == str(one.record.id)
    again = get_patient(engine, one.record.id)
    assert again is not None and again.record == one.record and again.medical_history == ()
    assert questionnaire_question_texts(engine) == []
    found = find_patient_records(engine, f"{one.record.family_name.split()[0]} {one.record.id}")
    assert [r.id for r in found] == [one.record.id]


def test_ng_text_ids_are_compared_trimmed(tmp_path):
    engine = create_r4_engine(f"sqlite:///{tmp_path / 'r4.db'}", NG)
    insert_patients(
        engine,
        [
            {"patient_id": " 1234 ", "surname": "Padded", "birth_date": date(1980, 1, 2)},
            {"patient_id": "ABC", "surname": "Nokey"},
            {"patient_id": None, "surname": "Nothing"},
        ],
    )
    assert [r.family_name for r in iter_patient_records(engine)] == ["Padded"]
    record = get_patient(engine, 1234)
    assert record is not None and record.record.birth_date == date(1980, 1, 2)
    update_patient(engine, 1234, surname="Moved")
    assert [r.family_name for r in find_patient_records(engine, "1234")] == ["Moved"]


def test_active_flag_when_mapped(tmp_path):
    engine = create_r4_engine(f"sqlite:///{tmp_path / 'r4.db'}", R4Mapping(active="Archived"))
    insert_patients(engine, [{"patient_id": 1, "surname": "Kept", "active": 1}])
    insert_patients(engine, [{"patient_id": 2, "surname": "Keeper", "active": 0}])
    assert [r.id for r in iter_patient_records(engine)] == [1]
    assert [r.id for r in iter_patient_records(engine, include_inactive=True)] == [1, 2]
    assert [r.id for r in find_patient_records(engine, "kee")] == []
