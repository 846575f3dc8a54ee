"""What a client asks for when it wants a patient's studies fetched, and that request bound to
the configured PACS it runs on (`FetchTarget`, built once at submit and once at claim)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pacs.models import Peer, StudyQuery, require_literal

_UID = re.compile(r"[0-9][0-9.]{0,63}")


class FetchRequest(BaseModel):
    """Fetch the studies of one patient, optionally limited to dates and modalities."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    pacs_patient_id: str | None = Field(
        None, min_length=1, max_length=64, description="The patient's PatientID on the PACS."
    )
    r4_patient_id: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="The patient's id in R4; the matching module finds the PACS ids.",
    )
    pacs: str | None = Field(
        None, max_length=64, description="Configured PACS name; default: the first one."
    )
    date_from: date | None = Field(None, description="First study date included (YYYY-MM-DD).")
    date_to: date | None = Field(None, description="Last study date included (YYYY-MM-DD).")
    modalities: list[str] = Field(
        default_factory=list,
        max_length=16,
        description="Only studies with one of these modalities (e.g. CT, PX, IO).",
    )
    study_uids: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Only these studies (StudyInstanceUIDs), e.g. one a reviewer confirmed.",
    )
    keep_until: date | None = Field(
        None,
        description="Keep the fetched studies at least until the end of this day (a prefetch "
        "for an appointment): the storage limits do not remove them before.",
    )

    @field_validator("pacs_patient_id", "r4_patient_id", "pacs")
    @classmethod
    def _one_patient(cls, value: str | None) -> str | None:
        # One patient means one patient: a wildcard here would fetch other people's studies.
        return None if value is None else require_literal("the value", value)

    @model_validator(mode="after")
    def _check(self) -> FetchRequest:
        if (self.pacs_patient_id is None) == (self.r4_patient_id is None):
            raise ValueError("give exactly one of pacs_patient_id and r4_patient_id")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError("date_from is after date_to")
        self.modalities = sorted({m.upper() for m in self.modalities})
        for modality in self.modalities:
            if not (1 <= len(modality) <= 16 and modality.isalnum()):
                raise ValueError("a modality is a short code such as CT or PX")
        self.study_uids = sorted(set(self.study_uids))
        if not all(_UID.fullmatch(uid) for uid in self.study_uids):
            raise ValueError("a study uid is digits and dots, at most 64 characters")
        return self

    def dedupe_key(self, pacs_name: str) -> str:
        """The same patient, range and modalities on the same PACS: one active job at a time
        (how long its studies are kept does not make another job)."""
        patient = (
            f"pacs:{self.pacs_patient_id}" if self.pacs_patient_id else f"r4:{self.r4_patient_id}"
        )
        parts = [
            pacs_name,
            patient,
            str(self.date_from or ""),
            str(self.date_to or ""),
            ",".join(self.modalities),
            ",".join(self.study_uids),
        ]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    def as_json(self) -> dict[str, Any]:
        """The request as JSON; `keep_until` only when set, so requests and job params of
        earlier versions read the same."""
        return self.model_dump(
            mode="json", exclude={"keep_until"} if self.keep_until is None else None
        )

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.as_json(), sort_keys=True).encode()).hexdigest()


class KnowsPeers(Protocol):
    """The part of the settings a target needs: the configured PACS by name."""

    def peer(self, name: str | None = None) -> Peer: ...


@dataclass(frozen=True)
class FetchTarget:
    """A validated request and the configured PACS it runs on. The job's params are its JSON
    form (`to_params`); a worker rebuilds it once (`from_params`) and passes it down."""

    peer: Peer
    request: FetchRequest

    @classmethod
    def resolve(cls, settings: KnowsPeers, request: FetchRequest) -> FetchTarget:
        """Raises LookupError (with a sentence) when the request names no configured PACS."""
        return cls(settings.peer(request.pacs), request)

    @classmethod
    def from_params(cls, settings: KnowsPeers, params: Mapping[str, Any]) -> FetchTarget:
        """A queued job's params back to a target. Raises LookupError when that PACS is no
        longer configured."""
        fields = dict(params)
        pacs_name = fields.pop("pacs")
        return cls(settings.peer(pacs_name), FetchRequest.model_validate(fields))

    @property
    def pacs_name(self) -> str:
        return self.peer.name

    def to_params(self) -> dict[str, Any]:
        # The request with `pacs` resolved: a job keeps its PACS when the default changes.
        return {**self.request.as_json(), "pacs": self.pacs_name}

    def dedupe_key(self) -> str:
        return self.request.dedupe_key(self.pacs_name)

    def query(self, **keys: Any) -> StudyQuery:
        """The C-FIND for this fetch: the request's date range and modalities, plus `keys`
        (patient_id, or patient_name and birth_date)."""
        return StudyQuery(
            date_from=self.request.date_from,
            date_to=self.request.date_to,
            modalities=tuple(self.request.modalities),
            **keys,
        )

    def wants(self, study_uid: str) -> bool:
        """False for a study the request's `study_uids` leaves out."""
        return not self.request.study_uids or study_uid in self.request.study_uids
