"""Reading typed values out of DICOM datasets: C-FIND answers and stored file headers alike."""

from __future__ import annotations

from datetime import date

from pydicom.dataset import Dataset

from pacs.models import PacsPatient, PersonName

# What `patient_of` reads: the tags to ask pydicom for when reading a stored file's patient.
PATIENT_TAGS = (
    "SpecificCharacterSet",
    "PatientID",
    "IssuerOfPatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "OtherPatientIDs",
)


def patient_of(ds: Dataset) -> PacsPatient:
    """The patient attributes a dataset carries (any missing one left empty)."""
    return PacsPatient(
        patient_id=str(ds.get("PatientID", "") or ""),
        name=PersonName.parse(str(ds.get("PatientName", "") or "")),
        birth_date=date_value(ds.get("PatientBirthDate")),
        sex=str(ds.get("PatientSex", "") or ""),
        issuer_of_patient_id=str(ds.get("IssuerOfPatientID", "") or ""),
        other_patient_ids=multi_value(ds.get("OtherPatientIDs")),
    )


def patient_changes(answer: PacsPatient, stored: PacsPatient) -> list[str]:
    """The patient attributes (DICOM keywords) in which a stored file differs from what a PACS
    answers now; attributes the answer left empty are not compared (PACS return only some)."""
    changes = []
    if answer.patient_id.strip() != stored.patient_id.strip():
        changes.append("PatientID")
    if answer.issuer_of_patient_id.strip() and (
        answer.issuer_of_patient_id.strip() != stored.issuer_of_patient_id.strip()
    ):
        changes.append("IssuerOfPatientID")
    if str(answer.name) and str(answer.name).casefold() != str(stored.name).casefold():
        changes.append("PatientName")
    if answer.birth_date and answer.birth_date != stored.birth_date:
        changes.append("PatientBirthDate")
    if answer.sex.strip() and answer.sex.strip() != stored.sex.strip():
        changes.append("PatientSex")
    return changes


def date_value(value: object) -> date | None:
    """A DA value as a date; None when absent or not a real date (PACS do send 00000000)."""
    text = str(value or "").strip()
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def multi_value(value: object) -> tuple[str, ...]:
    """A possibly multi-valued element as a tuple of its non-empty values."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(v for v in value.split("\\") if v)
    try:
        return tuple(str(v) for v in value if v)  # type: ignore[union-attr]
    except TypeError:
        return (str(value),)


def int_value(value: object) -> int | None:
    try:
        return int(str(value)) if value not in (None, "") else None
    except ValueError:
        return None
