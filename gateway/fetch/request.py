"""What a client asks for when it wants a patient's studies fetched."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pacs.models import require_literal

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
        """The same patient, range and modalities on the same PACS: one active job at a time."""
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

    def fingerprint(self) -> str:
        return hashlib.sha256(
            json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        ).hexdigest()
