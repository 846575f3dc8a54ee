"""Studies in the gateway's store, from the study index."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from gateway.api.access_deps import study_view
from gateway.api.auth import Permission, require
from gateway.api.deps import GatewayDep
from gateway.api.problems import ApiProblem
from gateway.api.schemas import API, PatientStudies, StudyOut

router = APIRouter(prefix=API, tags=["studies"], dependencies=[Depends(require(Permission.READ))])

# DICOM UID: dot-separated numbers, no leading zeros, at most 64 characters (PS3.5 9.1).
UID_PATTERN = r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$"


@router.get(
    "/patients/{pacs_patient_id}/studies",
    response_model=PatientStudies,
    summary="A patient's studies in the store",
    description="Only what the gateway has fetched; submit a fetch to bring more.",
)
def patient_studies(
    pacs_patient_id: Annotated[
        str, Path(min_length=1, max_length=64, description="The patient's PatientID on the PACS.")
    ],
    gateway: GatewayDep,
) -> PatientStudies:
    studies = gateway.index.patient_studies(pacs_patient_id)
    return PatientStudies(
        pacs_patient_id=pacs_patient_id, studies=[StudyOut.of(s) for s in studies]
    )


@router.get(
    "/studies/{study_uid}",
    response_model=StudyOut,
    summary="One study in the store, with its series",
    dependencies=[Depends(study_view("view.study"))],
)
def get_study(
    study_uid: Annotated[
        str, Path(max_length=64, pattern=UID_PATTERN, description="Study Instance UID.")
    ],
    gateway: GatewayDep,
) -> StudyOut:
    found = gateway.index.study(study_uid)
    if found is None:
        raise ApiProblem(
            404,
            "The gateway has no study with this UID; fetch the patient's studies first.",
            kind="study-not-found",
        )
    return StudyOut.of(found, with_series=True)
