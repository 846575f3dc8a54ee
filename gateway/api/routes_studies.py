"""Studies in the gateway's store, from the study index."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from gateway.api.access_deps import study_view
from gateway.api.auth import Permission, require
from gateway.api.deps import GatewayDep
from gateway.api.schemas import (
    API,
    KeepStudyRequest,
    PatientStudies,
    RemoveStudyRequest,
    StudyOut,
)
from gateway.core.keys import ApiKey
from gateway.index.study_index import StudyNotFound

router = APIRouter(prefix=API, tags=["studies"])
_READ = [Depends(require(Permission.READ))]

# DICOM UID: dot-separated numbers, no leading zeros, at most 64 characters (PS3.5 9.1).
UID_PATTERN = r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$"
StudyUid = Annotated[
    str, Path(max_length=64, pattern=UID_PATTERN, description="Study Instance UID.")
]


@router.get(
    "/patients/{pacs_patient_id}/studies",
    response_model=PatientStudies,
    summary="A patient's studies in the store",
    description="Only what the gateway has fetched; submit a fetch to bring more.",
    dependencies=_READ,
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
    dependencies=[*_READ, Depends(study_view("view.study"))],
)
def get_study(
    study_uid: StudyUid,
    gateway: GatewayDep,
) -> StudyOut:
    found = gateway.index.study(study_uid)
    if found is None:
        raise StudyNotFound(gateway.index.removal(study_uid))
    return StudyOut.of(found, with_series=True)


@router.delete(
    "/studies/{study_uid}",
    response_model=StudyOut,
    summary="Remove a wrongly filed study from the gateway",
    description="For a study filed under the wrong patient, or that should not be here: its "
    "files, index entries and previews are removed and the removal is audited as "
    "study.removed with the reason. The PACS keeps its copy; a later fetch can bring the "
    "study back. Answers with what was removed. Staff and admin keys only.",
    responses={404: {"description": "The gateway has no study with this UID."}},
)
def remove_study(
    study_uid: StudyUid,
    body: RemoveStudyRequest,
    gateway: GatewayDep,
    key: Annotated[ApiKey, Depends(require(Permission.MANAGE_STUDIES))],
) -> StudyOut:
    return StudyOut.of(gateway.remove_study(study_uid, body.reason, key.name))


@router.put(
    "/studies/{study_uid}/keep",
    response_model=StudyOut,
    summary="Keep a study whatever the storage limits say (or no longer)",
    description="A kept study is never removed by `storage_max_gb`, `storage_min_free_gb` or "
    "`keep_unused_days`; staff can still remove it. Audited as study.keep. Staff and admin "
    "keys only.",
    responses={404: {"description": "The gateway has no study with this UID."}},
)
def keep_study(
    study_uid: StudyUid,
    body: KeepStudyRequest,
    gateway: GatewayDep,
    key: Annotated[ApiKey, Depends(require(Permission.MANAGE_STUDIES))],
) -> StudyOut:
    return StudyOut.of(gateway.keep_study(study_uid, body.keep, key.name))
