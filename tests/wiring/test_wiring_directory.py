"""PatientDirectory over the demo R4 database (no PACS needed)."""

from __future__ import annotations

from datetime import date

import pytest
from demo_practice import demo_people

from gateway.matching import IdRule
from gateway.practice.directory import PatientDirectory
from pacs.models import PacsPatient, PersonName
from r4.database import create_r4_engine
from testkit.sample_data import insert_patients


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def r4_engine(demo_r4_url):
    engine = create_r4_engine(demo_r4_url)
    yield engine
    engine.dispose()


def _newcomer(engine, r4_id: int, family: str, given: str, born: date) -> PacsPatient:
    """Registers a patient in R4 and returns them as the PACS files them (id rule R4-)."""
    insert_patients(
        engine,
        [
            {
                "patient_id": r4_id,
                "surname": family,
                "forename": given,
                "birth_date": born,
                "sex": "F",
            }
        ],
    )
    return PacsPatient(f"R4-{r4_id}", PersonName.parse(f"{family}^{given}"), born, "F")


def test_without_r4_the_directory_is_empty():
    directory = PatientDirectory(None)
    assert not directory.configured
    assert directory.get(1001) is None
    assert directory.matcher() is None
    assert directory.search("Dubois") == []


def test_the_demo_people_are_in_r4_as_the_pacs_files_them(r4_engine):
    directory = PatientDirectory(r4_engine, id_rules=[IdRule(prefix="R4-")])
    for person in demo_people():
        record = directory.get(int(person.patient_id.removeprefix("R4-")))
        assert record is not None
        assert f"{record.family_name}^{record.given_name}" == person.name
        assert record.birth_date.strftime("%Y%m%d") == person.birth_date
        assert record.sex == person.sex
    assert directory.display(directory.get(1004)) == {
        "family_name": "van der Berg-Smit",
        "given_name": "Anne Marie",
        "birth_date": "1968-02-29",
        "sex": "F",
        "chart_number": "1004",
    }


def test_staff_search_by_name_birth_date_or_chart_number(r4_engine):
    directory = PatientDirectory(r4_engine)
    assert [r.id for r in directory.search("dub")] == [1003]
    assert [r.id for r in directory.search("Okafor 09/05/2012")] == [1005, 1006]
    assert [r.id for r in directory.search("okafor chin")] == [1006]
    assert [r.id for r in directory.search("1004")] == [1004]
    assert [r.id for r in directory.search("2012-05-09", limit=1)] == [1005]
    # Typed wildcards are characters, not patterns.
    assert directory.search("%") == []
    assert directory.search("_") == []


def test_a_patient_registered_after_the_index_was_built_is_matched(r4_engine):
    clock = Clock()
    directory = PatientDirectory(
        r4_engine, id_rules=[IdRule(prefix="R4-")], refresh_seconds=60, clock=clock
    )
    first = directory.matcher()
    assert first is not None
    size = len(first.index)

    newcomer = _newcomer(r4_engine, 9001, "Achterberg", "Ilse", date(1991, 8, 30))
    # Asked for by id (a fetch for them): rebuilt at once.
    decision = directory.matcher(require=9001).match(newcomer)
    assert decision.auto_linked and decision.r4_patient_id == 9001

    other = _newcomer(r4_engine, 9002, "Fairweather", "Rosalind", date(1987, 1, 17))
    assert directory.matcher().match(other).needs_review  # not yet: the index is fresh
    clock.now += 61
    rebuilt = directory.matcher()
    assert len(rebuilt.index) == size + 2
    assert rebuilt.match(other).r4_patient_id == 9002
