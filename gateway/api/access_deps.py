"""Dependencies that write "who opened what" to the audit trail (gateway.review.access) for
the API's study, preview and DICOMweb routes, and count it as use of the study (retention
keeps what is used): after the key check, from the path's ids.

A look-up that finds nothing (an unknown study) records nothing: the route answers 404."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import Request

from gateway.service import Gateway


def study_view(action: str) -> Callable[[Request], None]:
    """A dependency recording `action` on the study named by the path's `study_uid`."""

    def record(request: Request) -> None:
        key = getattr(request.state, "api_key", None)
        study_uid = request.path_params.get("study_uid")
        if key is None or not study_uid:
            return
        gateway: Gateway = request.app.state.gateway
        gateway.retention.used(str(study_uid))  # looked at: kept longest
        series_uid = request.path_params.get("series_uid")
        extra = {"study_uid": str(study_uid)}
        if series_uid:
            extra["series_uid"] = str(series_uid)
        subject = f"study:{study_uid}"
        gateway.access.viewed(
            key.name, action, subject, lambda: study_patient(gateway, str(study_uid)), **extra
        )

    return record


def study_patient(gateway: Gateway, study_uid: str) -> Mapping[str, Any] | None:
    study = gateway.index.study(study_uid)
    return None if study is None else {"pacs_patient_id": study.pacs_patient_id}
