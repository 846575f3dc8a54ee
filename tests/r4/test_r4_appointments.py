"""The appointment book, in the sys2000 and the NG shape: who comes in on which days,
cancelled and archived left out, `date` and `datetime` start columns alike."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from r4.appointments import AppointmentsNotMapped, appointments_between
from r4.check import appointments_check
from r4.database import create_r4_engine, r4_tables
from r4.mapping import R4Mapping
from testkit.sample_data import FULL_TEST_MAPPING, insert_appointments, insert_patients

DAY = date(2026, 12, 8)
SYS2000 = FULL_TEST_MAPPING.model_copy(
    update={"appointment_start": "StartTime", "appointment_cancelled": "Cancelled"}
)
NG = R4Mapping(preset="NG_R4_Sys2000")


def _practice(tmp_path, mapping: R4Mapping, ids=range(1, 8)):
    engine = create_r4_engine(f"sqlite:///{tmp_path / 'r4.db'}", mapping)
    insert_patients(
        engine,
        [
            {"patient_id": i, "forename": f"P{i}", "surname": "Test", "active": 0 if i == 7 else 1}
            for i in ids
        ],
    )
    return engine


def test_sys2000_appointments_of_one_day_leave_out_cancelled_and_archived(tmp_path):
    engine = _practice(tmp_path, SYS2000)
    insert_appointments(
        engine,
        [
            (1, datetime(2026, 12, 8, 9, 0), False),
            (2, datetime(2026, 12, 8, 14, 30), False),
            (2, datetime(2026, 12, 8, 16, 0), False),  # twice that day: once in the answer
            (3, datetime(2026, 12, 8, 11, 0), True),  # cancelled
            (4, datetime(2026, 12, 7, 17, 0), False),  # the day before
            (5, datetime(2026, 12, 9, 8, 0), False),  # the day after
            (7, datetime(2026, 12, 8, 10, 0), False),  # archived patient
        ],
    )

    found = appointments_between(engine, DAY, DAY)

    assert [(a.patient_id, a.starts_at) for a in found] == [
        (1, datetime(2026, 12, 8, 9, 0)),
        (2, datetime(2026, 12, 8, 14, 30)),
    ]
    assert [a.patient_id for a in appointments_between(engine, DAY, date(2026, 12, 9))] == [
        1,
        2,
        5,
    ]


def test_ng_appointments_by_record_id_with_a_date_column(tmp_path):
    engine = _practice(tmp_path, NG)
    insert_appointments(
        engine,
        [
            (3, date(2026, 12, 8), False),
            (1, date(2026, 12, 8), False),
            (2, date(2026, 12, 10), False),
        ],
    )

    found = appointments_between(engine, DAY, DAY)

    assert sorted(a.patient_id for a in found) == [1, 3]
    assert all(a.starts_at == datetime(2026, 12, 8) for a in found)


def test_a_book_without_a_start_column_says_what_to_set(tmp_path):
    engine = _practice(tmp_path, R4Mapping())  # sys2000: Appts, start not known publicly
    with pytest.raises(AppointmentsNotMapped) as refused:
        appointments_between(engine, DAY, DAY)
    assert "set appointment_start in [r4]" in str(refused.value)


def test_check_counts_the_next_working_day_or_lists_the_candidate_columns(tmp_path):
    engine = _practice(tmp_path, SYS2000)
    friday = date(2026, 12, 11)
    insert_appointments(engine, [(1, datetime(2026, 12, 14, 9, 0), False)])  # Monday
    line = appointments_check(engine, r4_tables(engine), today=friday)
    assert (line.ok, line.detail) == (True, "1 patients with appointments on Mon 14 Dec")

    unmapped = create_r4_engine(
        f"sqlite:///{tmp_path / 'r4.db'}",
        SYS2000.model_copy(update={"appointment_start": None}),
    )
    line = appointments_check(unmapped, r4_tables(unmapped), today=friday)
    assert line.ok
    assert line.detail == (
        "Appts found; set appointment_start to its start column, one of: StartTime."
    )
