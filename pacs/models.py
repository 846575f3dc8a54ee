"""Typed values that cross the `pacs` package boundary: peers, queries and what C-FIND returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from pacs.tls import TlsClient

# "auto": C-GET first (it needs no configuration on the PACS), C-MOVE when C-GET cannot bring
# every image (and the other way round is not needed: C-MOVE needs the PACS to know us).
RetrieveMethod = Literal["move", "get", "auto"]

# C-FIND reads these as wildcards (`*`, `?`) and as a value separator (`\\`): in a value that
# came from outside they would widen a query for one patient to several.
MATCHING_CHARACTERS = "*?\\"


def literal_problem(value: str) -> str | None:
    """Why `value` cannot be sent as a literal C-FIND key (a phrase without the value), or
    None. Empty after trimming counts: an empty key matches everything."""
    if not value.strip():
        return "must not be empty"
    if any(c in value for c in MATCHING_CHARACTERS):
        return "must not contain the DICOM matching characters * ? or \\"
    return None


def require_literal(field_name: str, value: str) -> str:
    """`value` unchanged, or ValueError naming `field_name` (never the value)."""
    problem = literal_problem(value)
    if problem:
        raise ValueError(f"{field_name} {problem}")
    return value


@dataclass(frozen=True)
class Peer:
    """A remote DICOM node we query and retrieve from."""

    ae_title: str
    host: str
    port: int
    retrieve_method: RetrieveMethod = "move"
    max_associations: int = 2
    connect_timeout: float = 5.0
    acse_timeout: float = 10.0
    # Idle time allowed between two DIMSE messages (or two landed instances), never total time.
    dimse_timeout: float = 60.0
    name: str = ""
    # Matches one C-FIND may answer; past it the query is cut off (memory stays bounded).
    max_find_matches: int = 1000
    # DICOM over TLS for every association with this PACS; None: plain TCP.
    tls: TlsClient | None = None

    @property
    def label(self) -> str:
        return self.name or f"{self.ae_title}@{self.host}:{self.port}"


@dataclass(frozen=True)
class LocalNode:
    """Who we are on the DICOM network."""

    ae_title: str = "PACSGATEWAY"
    port: int = 11112
    bind_address: str = "0.0.0.0"
    # Extra calling AE titles allowed to push to our Storage SCP, besides the configured peers.
    allowed_calling_aets: tuple[str, ...] = ()
    maximum_pdu_size: int = 0


@dataclass(frozen=True)
class PersonName:
    """A DICOM PN split into its components (alphabetic group only)."""

    family: str = ""
    given: str = ""
    middle: str = ""
    prefix: str = ""
    suffix: str = ""

    @classmethod
    def parse(cls, value: str) -> PersonName:
        alphabetic = (value or "").split("=")[0]
        parts = [*alphabetic.split("^"), "", "", "", "", ""][:5]
        return cls(*(p.strip() for p in parts))

    def __str__(self) -> str:
        return " ".join(
            p for p in (self.prefix, self.given, self.middle, self.family, self.suffix) if p
        )


@dataclass(frozen=True)
class PacsPatient:
    """Patient attributes as the PACS reports them in a C-FIND answer."""

    patient_id: str
    name: PersonName = field(default_factory=PersonName)
    birth_date: date | None = None
    sex: str = ""
    issuer_of_patient_id: str = ""
    other_patient_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class StudyQuery:
    """A STUDY-level C-FIND: at least a patient id, or a name with a birth date.

    Patient id, issuer, study UID and modalities are literals: a matching character in them is
    refused here, whoever built the query. Only `patient_name` may carry wildcards, and only
    ones the gateway wrote itself (callers check names that came from outside)."""

    patient_id: str = ""
    issuer_of_patient_id: str = ""
    patient_name: str = ""
    birth_date: date | None = None
    date_from: date | None = None
    date_to: date | None = None
    modalities: tuple[str, ...] = ()
    study_uid: str = ""

    def __post_init__(self) -> None:
        if not (self.patient_id or self.study_uid or (self.patient_name and self.birth_date)):
            raise ValueError(
                "a study query needs a patient id, a study UID, or a name with a birth date"
            )
        literals = [
            ("the patient id", self.patient_id),
            ("the issuer of patient id", self.issuer_of_patient_id),
            ("the study UID", self.study_uid),
            *(("a modality", m) for m in self.modalities),
        ]
        for what, value in literals:
            if value:
                require_literal(what, value)
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError("the date range ends before it starts")


@dataclass(frozen=True)
class Study:
    study_uid: str
    patient: PacsPatient
    study_date: date | None = None
    description: str = ""
    accession_number: str = ""
    modalities: tuple[str, ...] = ()
    number_of_instances: int | None = None
    number_of_series: int | None = None


@dataclass(frozen=True)
class Series:
    study_uid: str
    series_uid: str
    modality: str = ""
    description: str = ""
    number: int | None = None
    number_of_instances: int | None = None


@dataclass(frozen=True)
class Instance:
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str = ""  # some PACS (dcmqrscp) do not return it at IMAGE level
    number: int | None = None
    modality: str = ""  # the series' Modality
