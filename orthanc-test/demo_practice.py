"""An R4 practice database (SQLite) holding the people of the demo PACS studies.

The demo catalog's practice patients (PACS ids R4-1001 ... R4-1006, issuer R4PRACTICE) are R4
patients 1001 ... 1006 (`PatientCode`, which is also their chart number for the id rule) with
the same names, birth dates and sex as their studies: with the id rule prefix "R4-", patient
1003 is PACS id R4-1003. The outside id EXT-77812 is the same person as R4-1003 and has no R4
row of its own. Generated patients (`testkit.sample_data`) fill the practice around them, from
PatientCode 5000 on, so they cannot collide. The database is shaped like the default mapping
(`sys2000`: `Patients` by `PatientCode`, `Forename`, `Surname`, `DOB`...) unless another
mapping is given.

    python orthanc-test/demo_practice.py OUT.db
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

# testkit/ (at the repo root) is not installed: run as a script, this file finds it from here.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from demo_studies import PATIENTS, PRACTICE, DemoPatient
from pydicom.valuerep import PersonName
from sqlalchemy import select

from r4.database import create_r4_engine, r4_tables
from r4.mapping import R4Mapping
from testkit.sample_data import generate_practice, insert_patients

ID_PREFIX = "R4-"
GENERATED_FIRST_ID = 5000
GENERATED_COUNT = 300


def demo_people() -> tuple[DemoPatient, ...]:
    """The demo patients filed under the practice's own ids (one per person)."""
    return tuple(p for p in PATIENTS if p.issuer == PRACTICE and p.patient_id.startswith(ID_PREFIX))


def chart_number(patient: DemoPatient) -> str:
    return patient.patient_id.removeprefix(ID_PREFIX)


def r4_patient_id(pacs_patient_id: str) -> int:
    """The R4 PatientID of the demo person filed in the PACS under `pacs_patient_id`."""
    return int(pacs_patient_id.removeprefix(ID_PREFIX))


def _fields(patient: DemoPatient) -> dict[str, object]:
    """The demo person by logical field name (`r4.mapping.PATIENT_FIELDS`)."""
    name = PersonName(patient.name)
    born = patient.birth_date
    return {
        "patient_id": r4_patient_id(patient.patient_id),
        "chart_number": chart_number(patient),
        "forename": name.given_name,
        "surname": name.family_name,
        "birth_date": date(int(born[:4]), int(born[4:6]), int(born[6:])),
        "sex": patient.sex,
        "active": 1,
    }


def write_demo_practice(
    path: Path | str,
    *,
    generated: int = GENERATED_COUNT,
    seed: int = 4,
    mapping: R4Mapping | None = None,
) -> str:
    """Create the R4 database at `path` (replacing nothing: the file must not exist yet),
    shaped like `mapping` (default: the `sys2000` preset), and return its SQLAlchemy URL."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists already")
    url = f"sqlite:///{path}"
    engine = create_r4_engine(url, mapping)
    try:
        generate_practice(
            engine, generated, seed=seed, first_id=GENERATED_FIRST_ID, history_per_patient=0.5
        )
        people = [_fields(p) for p in demo_people()]
        id_column = r4_tables(engine).patient_id
        with engine.connect() as conn:
            taken = {str(v).strip() for v in conn.scalars(select(id_column)) if v is not None}
        clash = taken & {str(p["patient_id"]) for p in people}
        if clash:  # generate_practice's ids start far above the demo ones
            raise ValueError(f"generated R4 ids collide with the demo people: {sorted(clash)}")
        insert_patients(engine, people, seed=seed)
    finally:
        engine.dispose()
    return url


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--generated", type=int, default=GENERATED_COUNT)
    args = parser.parse_args(argv)
    print(write_demo_practice(args.out, generated=args.generated))


if __name__ == "__main__":
    main()
