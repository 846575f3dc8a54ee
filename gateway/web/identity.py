"""Whose images these are, for the top of the clinician's job page.

The PACS side is read from the files the gateway received (one header per PACS patient, so
the name is exactly what the PACS files, decoded with the file's SpecificCharacterSet: Latin-1
accents, UTF-8, and the ideographic and phonetic groups of a Japanese or Korean name each shown
on their own line). The R4 side is the practice's record of the patient the job was asked for.
Before the first file of a patient has arrived, the block says so rather than guessing.

Nothing here is logged: names and birth dates only ever go to the page.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import pydicom
from pydicom.valuerep import PersonName

import jobs
from gateway.service import Gateway
from gateway.web.when import day_text, moment_text

log = logging.getLogger(__name__)

# Files tried per study before giving up on a header (one may be half written mid-fetch).
_TRIES = 3
_HEADER_TAGS = [
    "SpecificCharacterSet",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "PatientID",
]
_SEX = {"F": "female", "M": "male", "O": "other"}
EARLIER_SHOWN = 10


@dataclass(frozen=True)
class PacsIdentity:
    """One PACS patient as its files name them."""

    patient_id: str
    name: str  # "Müller, Zoë"; "" when the files carry no name
    ideographic: str
    phonetic: str
    birth_date: str  # "12 Mar 1984"
    sex: str  # "female", "male", "other", "not given"


@dataclass(frozen=True)
class R4Identity:
    name: str
    chart_number: str
    birth_date: str
    sex: str


@dataclass(frozen=True)
class Identity:
    pacs: tuple[PacsIdentity, ...]
    # PACS patient ids of the job whose files have not arrived yet.
    pending: tuple[str, ...]
    r4: R4Identity | None
    # Set when the job was asked by R4 patient and R4 does not (or cannot) say who that is.
    r4_missing: str = ""


@dataclass(frozen=True)
class EarlierFetch:
    job_id: str
    requested: str
    state: str
    message: str


def job_identity(gateway: Gateway, job: jobs.Job) -> Identity:
    """The identity block of `job`: every PACS patient its studies are filed under, and the
    R4 patient when the job was asked by R4 patient."""
    found: dict[str, PacsIdentity | None] = {}
    requested = str(job.params.get("pacs_patient_id") or "")
    if requested:
        found[requested] = None
    for entry in job.checkpoint.get("studies") or ():
        patient_id = str(entry.get("pacs_patient_id") or "")
        if not patient_id or found.get(patient_id) is not None:
            continue
        found[patient_id] = _from_files(gateway, str(entry.get("study_uid") or ""))
    if requested and found[requested] is None:
        # Fetched before (by this or an earlier job): its indexed studies have the files.
        for study in gateway.index.patient_studies(requested)[:_TRIES]:
            found[requested] = _from_files(gateway, study.study_uid)
            if found[requested] is not None:
                break
    r4, missing = _r4_side(gateway, job)
    return Identity(
        pacs=tuple(p for p in found.values() if p is not None),
        pending=tuple(k for k, v in found.items() if v is None),
        r4=r4,
        r4_missing=missing,
    )


def earlier_fetches(gateway: Gateway, job: jobs.Job) -> list[EarlierFetch]:
    """Other fetch jobs asked for the same patient (the same R4 patient, or the same PACS id),
    newest first."""
    key = "r4_patient_id" if job.params.get("r4_patient_id") else "pacs_patient_id"
    value = str(job.params.get(key) or "")
    if not value:
        return []
    others = gateway.jobs.list(kind="fetch", params_match={key: value}, limit=EARLIER_SHOWN + 1)
    return [
        EarlierFetch(
            job_id=other.id,
            requested=moment_text(other.created_at),
            state=other.state.value.replace("_", " "),
            message=other.message or "",
        )
        for other in others
        if other.id != job.id
    ][:EARLIER_SHOWN]


def pn_text(name: PersonName | str | None) -> tuple[str, str, str]:
    """(alphabetic as 'Family, Given Middle', ideographic, phonetic) of a DICOM name."""
    if name is None or str(name) == "":
        return "", "", ""
    if not isinstance(name, PersonName):
        name = PersonName(str(name))
    # Ideographic and phonetic groups read family name first, without a comma ("山田 太郎").
    return (
        _group(name.alphabetic),
        _group(name.ideographic, " "),
        _group(name.phonetic, " "),
    )


def sex_words(value: str | None) -> str:
    return _SEX.get((value or "").strip().upper(), "not given")


def _group(text: str, between: str = ", ") -> str:
    """'Family^Given^Middle^Prefix^Suffix' -> 'Prefix Family, Given Middle Suffix'."""
    parts = [*text.split("^"), "", "", "", ""][:5]
    family, given, middle, prefix, suffix = (p.strip() for p in parts)
    first = " ".join(p for p in (prefix, family) if p)
    rest = " ".join(p for p in (given, middle, suffix) if p)
    return between.join(p for p in (first, rest) if p)


def _files(gateway: Gateway, study_uid: str) -> Iterator[Path]:
    if not study_uid:
        return iter(())
    indexed = gateway.index.instance_paths(study_uid)
    if indexed:
        return iter(indexed)
    # Mid-fetch the study is not indexed yet; its files are laid out by study.
    folder = gateway.index.store_root / study_uid
    if ".." in study_uid or "/" in study_uid or not folder.is_dir():
        return iter(())
    return folder.glob("*/*.dcm")


def _from_files(gateway: Gateway, study_uid: str) -> PacsIdentity | None:
    for path in islice(_files(gateway, study_uid), _TRIES):
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_HEADER_TAGS)
        except Exception as exc:  # half written, or not DICOM: try the next file
            log.debug("No patient header in a stored file: %s", type(exc).__name__)
            continue
        name, ideographic, phonetic = pn_text(header.get("PatientName"))
        return PacsIdentity(
            patient_id=str(header.get("PatientID") or ""),
            name=name,
            ideographic=ideographic,
            phonetic=phonetic,
            birth_date=day_text(str(header.get("PatientBirthDate") or "")) or "not given",
            sex=sex_words(str(header.get("PatientSex") or "")),
        )
    return None


def _r4_side(gateway: Gateway, job: jobs.Job) -> tuple[R4Identity | None, str]:
    asked: Any = job.params.get("r4_patient_id")
    if not asked:
        return None, ""
    try:
        record = gateway.patients.get(int(asked))
    except (ValueError, TypeError):
        record = None
    except Exception as exc:  # R4 down: the page still shows the PACS side
        log.warning("R4 could not be read for a job page: %s", type(exc).__name__)
        return None, "R4 could not be read just now, so the practice's record is not shown."
    if record is None:
        return None, "R4 has no patient under the number this fetch was asked for."
    family, given = record.family_name.strip(), record.given_name.strip()
    return (
        R4Identity(
            name=", ".join(p for p in (family, given) if p) or "no name in R4",
            chart_number=record.chart_number or "none",
            birth_date=day_text(record.birth_date) or "not given",
            sex=sex_words(record.sex),
        ),
        "",
    )
