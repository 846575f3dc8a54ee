"""DICOM JSON (PS3.18 F.2) for QIDO-RS results and WADO-RS metadata, from stored headers.

QIDO results are the index's counts plus a fixed set of attributes copied from one stored
instance's header; metadata is every header element of each instance, pixel data left out.
Headers are read with stop_before_pixels: pixel data is never loaded.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.tag import Tag

from gateway.index.catalog import StoredFile, StudyRow

log = logging.getLogger("gateway.dicomweb")

JsonDataset = dict[str, Any]

STUDY_KEYWORDS = (
    "SpecificCharacterSet",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ReferringPhysicianName",
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyID",
    "StudyDescription",
)
SERIES_KEYWORDS = (
    "SpecificCharacterSet",
    "Modality",
    "SeriesDescription",
    "SeriesNumber",
    "SeriesDate",
    "SeriesTime",
    "BodyPartExamined",
    "StudyInstanceUID",
    "SeriesInstanceUID",
)
INSTANCE_KEYWORDS = (
    "SpecificCharacterSet",
    "SOPClassUID",
    "SOPInstanceUID",
    "InstanceNumber",
    "Rows",
    "Columns",
    "BitsAllocated",
    "NumberOfFrames",
    "StudyInstanceUID",
    "SeriesInstanceUID",
)


def read_header(path: Path) -> Dataset | None:
    """The instance's header without pixel data; None (logged) if the file is unreadable."""
    try:
        return dcmread(path, stop_before_pixels=True)
    except (OSError, InvalidDicomError, ValueError, EOFError) as exc:
        # The path holds UIDs only; the message of a parse error could quote header bytes.
        log.warning("Stored file unreadable (%s): %s", type(exc).__name__, path.name)
        return None


def study_result(row: StudyRow, first: StoredFile | None, retrieve_url: str) -> JsonDataset:
    ds = _pick(read_header(first.path) if first else None, STUDY_KEYWORDS)
    ds.StudyInstanceUID = row.study_uid
    if "PatientID" not in ds:
        ds.PatientID = row.pacs_patient_id
    if row.study_date is not None and "StudyDate" not in ds:
        ds.StudyDate = row.study_date.strftime("%Y%m%d")
    ds.ModalitiesInStudy = list(row.modalities)
    ds.NumberOfStudyRelatedSeries = row.series_count
    ds.NumberOfStudyRelatedInstances = row.instance_count
    ds.RetrieveURL = retrieve_url
    return _json(ds)


def series_result(files: Sequence[StoredFile], retrieve_url: str) -> JsonDataset:
    first = files[0]
    ds = _pick(read_header(first.path), SERIES_KEYWORDS)
    ds.StudyInstanceUID = first.study_uid
    ds.SeriesInstanceUID = first.series_uid
    ds.NumberOfSeriesRelatedInstances = len(files)
    ds.RetrieveURL = retrieve_url
    return _json(ds)


def instance_result(file: StoredFile, retrieve_url: str) -> JsonDataset:
    header = read_header(file.path)
    ds = _pick(header, INSTANCE_KEYWORDS)
    ds.StudyInstanceUID = file.study_uid
    ds.SeriesInstanceUID = file.series_uid
    ds.SOPInstanceUID = file.sop_instance_uid
    if file.sop_class_uid:
        ds.SOPClassUID = file.sop_class_uid
    if file.number is not None and "InstanceNumber" not in ds:
        ds.InstanceNumber = file.number
    meta = getattr(header, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        # We send files as stored, so the stored syntax is the one on offer.
        ds.AvailableTransferSyntaxUID = meta.TransferSyntaxUID
    ds.RetrieveURL = retrieve_url
    return _json(ds)


def metadata(files: Iterable[StoredFile]) -> list[JsonDataset]:
    """WADO-RS metadata: each readable instance's whole header (binary values inline)."""
    out = []
    for file in files:
        header = read_header(file.path)
        if header is not None:
            out.append(_json(header))
    return out


def _pick(header: Dataset | None, keywords: Sequence[str]) -> Dataset:
    ds = Dataset()
    if header is None:
        return ds
    for keyword in keywords:
        tag = Tag(keyword)
        if tag in header:
            # Indexing decodes the raw element with the header's character set.
            ds[tag] = header[tag]
    return ds


def _json(ds: Dataset) -> JsonDataset:
    # Without a bulk data handler pydicom inlines binary values (base64); pixel data was
    # never read, so what remains is small (icons and overlays at most).
    return ds.to_json_dict(bulk_data_threshold=1024, bulk_data_element_handler=None)
