from datetime import date

import pytest

from gateway.matching import Demographics, PatientIndex, normalize_name
from r4.records import PatientRecord


def rec(id, family, given, born, chart=None, other_ids=()):
    return PatientRecord(id, chart, family, given, born, "F", other_ids)


def query(family, given, born):
    n = normalize_name(family, given)
    return Demographics(n.family, n.given, born, None)


@pytest.fixture
def index():
    return PatientIndex.build(
        iter(  # any one-pass iterable
            [
                rec(1, "Kowalski", "Anna", date(1980, 3, 7), chart="0042"),
                rec(2, "Nowak", "Ewa", date(1980, 7, 3), other_ids=("OLD1",)),
                rec(3, "Smith", "John", date(1990, 1, 1)),
                rec(4, "Kowalski", "Anna", None),
                rec(5, "van der Berg", "Jan", date(1970, 1, 1)),
            ]
        )
    )


def ids(index, rows):
    return {index.r4_id(r) for r in rows}


def test_birth_date_and_swapped_blocks(index):
    rows = index.candidate_rows(query("Zzz", "Yyy", date(1980, 3, 7)))
    assert ids(index, rows) == {1, 2}


def test_name_pair_block_finds_missing_birth_dates_and_swaps(index):
    assert ids(index, index.candidate_rows(query("Kowalski", "Anna", None))) == {1, 4}
    assert ids(index, index.candidate_rows(query("Anna", "Kowalski", None))) == {1, 4}
    assert ids(index, index.candidate_rows(query("Kowalsky", "Ana", None))) == {1, 4}
    assert ids(index, index.candidate_rows(query("Berg", "Jan", None))) == {5}


def test_unrelated_query_gets_no_candidates(index):
    assert list(index.candidate_rows(query("Papadopoulos", "Nikos", date(2001, 1, 1)))) == []


def test_id_lookups(index):
    assert ids(index, index.rows_by_chart("42")) == {1}
    assert index.chart_number(index.row_of(1)) == "0042"
    assert ids(index, index.rows_by_other_id("old1")) == {2}
    assert index.other_ids(index.row_of(3)) == ()


def test_membership_and_demographics(index):
    assert 3 in index
    assert 99 not in index
    assert index.row_of(99) is None
    d = index.demographics(index.row_of(5))
    assert (d.family, d.given, d.birth_date, d.sex) == (
        "van der berg",
        "jan",
        date(1970, 1, 1),
        "F",
    )
    assert len(index) == 5
    assert index.stats()["patients"] == 5


def test_duplicate_id_rejected_without_patient_data():
    index = PatientIndex()
    index.add(rec(1, "Kowalski", "Anna", None))
    with pytest.raises(ValueError, match="R4 patient id 1 added twice") as err:
        index.add(rec(1, "Kowalski", "Anna", None))
    assert "Kowalski" not in str(err.value)


def test_oversized_name_blocks_are_skipped():
    index = PatientIndex.build(
        (rec(i, "Smith", "John", None) for i in range(1, 6)), max_name_block=3
    )
    assert list(index.candidate_rows(query("Smith", "John", None))) == []
