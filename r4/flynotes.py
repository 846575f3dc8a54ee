"""Client for the (private) Flynotes practice API; the contract is in docs/flynotes-api.md.

Every call is retried with exponential backoff on timeouts, connection errors and 5xx answers,
never on 4xx (a 4xx means our request or licence is wrong and repeating it cannot help).
Retried writes are safe: a patient batch carries a batch id derived from its content, and a
full patient sync is a PUT of the whole record.

Errors raised here name the endpoint and status only: request and response bodies may hold
patient data and never go into exception messages.
"""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from r4.patients import PatientDetails

API_PREFIX = "/r4/v1"
LICENCE_HEADER = "Authorization"
LICENCE_SCHEME = "Licence"

T = TypeVar("T")


class FlynotesError(Exception):
    """A Flynotes call failed. `status` is None when no HTTP answer came back."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class FlynotesServerError(FlynotesError):
    """5xx: Flynotes is having trouble; retried."""


class FlynotesRequestError(FlynotesError):
    """4xx: our request was refused; not retried."""


@dataclass(frozen=True)
class AwsCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None
    expires_at: datetime  # timezone-aware

    def __repr__(self) -> str:  # keep secrets out of logs and tracebacks
        return f"AwsCredentials(access_key_id={self.access_key_id!r}, expires_at={self.expires_at})"


@dataclass(frozen=True)
class SqsAccess:
    """Where the practice's command queue is and the temporary credentials to read it."""

    queue_url: str
    region: str
    credentials: AwsCredentials


@dataclass(frozen=True)
class LicenceInfo:
    practice_id: str | None
    gateway_version: str  # the version Flynotes wants this gateway to run
    sqs: SqsAccess


@dataclass(frozen=True)
class BatchResult:
    batch_id: str
    accepted: int
    duplicate: bool  # Flynotes had already stored this batch (a retry)


class _Credentials(BaseModel):
    model_config = ConfigDict(extra="ignore")
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None
    expiration: datetime


class _Sqs(BaseModel):
    model_config = ConfigDict(extra="ignore")
    queue_url: str
    region: str
    credentials: _Credentials


class _LicenceResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")
    practice_id: str | None = None
    gateway_version: str
    sqs: _Sqs


class _BatchResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")
    batch_id: str
    accepted: int
    duplicate: bool = False


def _iso(value: Any) -> Any:
    return value.isoformat() if value is not None else None


def basic_patient_json(details: PatientDetails) -> dict[str, Any]:
    """The bulk-upload shape: identity, address and contact details, no medical history."""
    r = details.record
    a = details.address
    c = details.contact
    return {
        "id": r.id,
        "chart_number": r.chart_number,
        "title": details.title,
        "given_name": r.given_name,
        "middle_name": details.middle_name,
        "family_name": r.family_name,
        "preferred_name": details.preferred_name,
        "birth_date": _iso(r.birth_date),
        "sex": r.sex,
        "other_ids": list(r.other_ids),
        "address": None
        if a is None
        else {
            "line1": a.line1,
            "line2": a.line2,
            "town": a.town,
            "county": a.county,
            "postcode": a.postcode,
        },
        "contact": {
            "home_phone": c.home_phone,
            "work_phone": c.work_phone,
            "mobile_phone": c.mobile_phone,
            "email": c.email,
        },
    }


def full_patient_json(details: PatientDetails) -> dict[str, Any]:
    """The patient-sync shape: the basic shape plus the whole medical history."""
    body = basic_patient_json(details)
    body["medical_history"] = [
        {
            "question": h.question,
            "answer": h.answer,
            "notes": h.notes,
            "recorded_at": _iso(h.recorded_at),
        }
        for h in details.medical_history
    ]
    return body


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def batch_id_for(patients_json: bytes) -> str:
    """Content-derived batch id: the same patients in the same order give the same id, so
    Flynotes recognises a retried batch (and an unchanged hourly batch) and stores it once."""
    return "sha256:" + hashlib.sha256(patients_json).hexdigest()


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, httpx.TransportError | FlynotesServerError)


class FlynotesClient:
    """Thread-safe (one pooled httpx.Client); close it, or use it as a context manager."""

    def __init__(
        self,
        base_url: str,
        licence_key: str,
        *,
        timeout: float = 30.0,
        max_attempts: int = 5,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + API_PREFIX,
            headers={LICENCE_HEADER: f"{LICENCE_SCHEME} {licence_key}"},
            timeout=timeout,
            transport=transport,
        )
        self._retrying = Retrying(
            stop=stop_after_attempt(max_attempts),
            wait=wait_exponential(multiplier=backoff_initial, max=backoff_max)
            + wait_random(0, backoff_initial),
            retry=retry_if_exception(_is_retryable),
            reraise=True,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FlynotesClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(
        self, method: str, path: str, parse: Callable[[httpx.Response], T], **kwargs: Any
    ) -> T:
        def once() -> T:
            response = self._http.request(method, path, **kwargs)
            if response.status_code >= 500:
                raise FlynotesServerError(
                    f"Flynotes {method} {path} answered {response.status_code}",
                    status=response.status_code,
                )
            if response.status_code >= 400:
                raise FlynotesRequestError(
                    f"Flynotes {method} {path} refused with {response.status_code}",
                    status=response.status_code,
                )
            return parse(response)

        return self._retrying(once)

    def initialise(self, gateway_version: str) -> LicenceInfo:
        """Check the licence key; learn the wanted gateway version and fresh SQS credentials."""
        body = {"gateway_version": gateway_version, "hostname": socket.gethostname()}
        data = self._call(
            "POST",
            "/licence/initialise",
            lambda r: _LicenceResponse.model_validate_json(r.content),
            json=body,
        )
        expires = data.sqs.credentials.expiration
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        return LicenceInfo(
            practice_id=data.practice_id,
            gateway_version=data.gateway_version,
            sqs=SqsAccess(
                queue_url=data.sqs.queue_url,
                region=data.sqs.region,
                credentials=AwsCredentials(
                    access_key_id=data.sqs.credentials.access_key_id,
                    secret_access_key=data.sqs.credentials.secret_access_key,
                    session_token=data.sqs.credentials.session_token,
                    expires_at=expires,
                ),
            ),
        )

    def upload_patient_batch(self, patients: Sequence[PatientDetails]) -> BatchResult:
        """Upload one batch of basic patient details (idempotent by content)."""
        patients_json = _canonical([basic_patient_json(p) for p in patients])
        batch_id = batch_id_for(patients_json)
        # Built by hand so the patients are serialised once, for the id and the body alike.
        content = b'{"batch_id":"' + batch_id.encode() + b'","patients":' + patients_json + b"}"
        data = self._call(
            "POST",
            "/patients/batches",
            lambda r: _BatchResponse.model_validate_json(r.content),
            content=content,
            headers={"Content-Type": "application/json", "Idempotency-Key": batch_id},
        )
        return BatchResult(batch_id=batch_id, accepted=data.accepted, duplicate=data.duplicate)

    def sync_patient(self, patient: PatientDetails) -> None:
        """Replace Flynotes' copy of one patient with the full record and medical history."""
        self._call(
            "PUT",
            f"/patients/{patient.record.id}",
            lambda r: None,
            content=_canonical(full_patient_json(patient)),
            headers={"Content-Type": "application/json"},
        )


def utc_now() -> datetime:
    return datetime.now(UTC)
