"""Moving patients from R4 to Flynotes: the hourly bulk upload and the on-demand full sync."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy import Engine

from r4 import observe
from r4.flynotes import FlynotesClient
from r4.patients import get_patient, iter_patient_batches

log = logging.getLogger(__name__)

DEFAULT_UPLOAD_BATCH_SIZE = 500


class PatientNotFound(LookupError):
    def __init__(self, patient_id: int) -> None:
        super().__init__(f"R4 has no patient with id {patient_id}")
        self.patient_id = patient_id


class UploadInterrupted(RuntimeError):
    """The stop event was set mid-upload; the batches sent so far stay uploaded."""


@dataclass(frozen=True)
class UploadSummary:
    batches: int
    patients: int
    duplicate_batches: int  # batches Flynotes already had (unchanged since last upload)
    seconds: float


def bulk_upload_patients(
    engine: Engine,
    client: FlynotesClient,
    *,
    batch_size: int = DEFAULT_UPLOAD_BATCH_SIZE,
    stop: threading.Event | None = None,
) -> UploadSummary:
    """Upload basic details of every patient, `batch_size` per request.

    "All patients", as the practice software always did: archived ones too (when the mapping
    names an active flag), because a returning patient must be consentable the moment they
    walk in, before anyone un-archives them in R4.

    A batch that still fails after the client's retries aborts the upload with that error:
    the caller (an SQS message or the schedule) tries the whole upload again later, and the
    batches that had already gone through are recognised by their batch id.
    """
    started = time.monotonic()
    batches = patients = duplicates = 0
    for page in iter_patient_batches(engine, batch_size, include_inactive=True):
        if stop is not None and stop.is_set():
            raise UploadInterrupted(f"bulk upload stopped after {patients} patients")
        result = client.upload_patient_batch(page)
        batches += 1
        patients += len(page)
        duplicates += result.duplicate
    summary = UploadSummary(batches, patients, duplicates, time.monotonic() - started)
    log.info(
        "bulk upload: %d patients in %d batches (%d unchanged) in %.1f s",
        summary.patients,
        summary.batches,
        summary.duplicate_batches,
        summary.seconds,
    )
    observe.bulk_uploaded(time.time(), summary.patients)
    return summary


def sync_patient(engine: Engine, client: FlynotesClient, patient_id: int) -> None:
    """Send one patient's full record and medical history to Flynotes."""
    details = get_patient(engine, patient_id)
    if details is None:
        raise PatientNotFound(patient_id)
    client.sync_patient(details)
