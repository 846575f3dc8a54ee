"""C-FIND at STUDY, SERIES and IMAGE level (Study Root), answers decoded into typed values."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from datetime import date

from pydicom.dataset import Dataset
from pynetdicom import build_context
from pynetdicom.association import Association
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FindModel

from pacs.association import open_association
from pacs.attributes import date_value, int_value, multi_value, patient_of
from pacs.errors import AssociationAborted, IdleTimeout, TooManyMatches, dimse_failure
from pacs.models import Instance, Peer, PersonName, Series, Study, StudyQuery
from pacs.store import InvalidUID, check_uid

log = logging.getLogger(__name__)

# Ask for UTF-8 answers; pydicom decodes each answer with the charset it declares.
QUERY_CHARSET = "ISO_IR 192"

OnForeign = Callable[[Study], None]


def find_studies(
    peer: Peer,
    calling_ae_title: str,
    query: StudyQuery,
    *,
    on_foreign: OnForeign | None = None,
) -> list[Study]:
    """Studies matching `query`, re-checked on our side.

    Date range and modalities are checked again since some PACS ignore keys they do not index.
    An answer about another patient than the one asked for (a PatientID, issuer, birth date or
    name the query does not match) is dropped: logged by its study UID only and handed to
    `on_foreign`, so a job can say how many it left out. A PACS that widens a query must never
    put another person's study into a patient's fetch."""
    with open_association(peer, calling_ae_title, [build_context(FindModel)]) as assoc:
        answers = list(_find(assoc, peer, _study_identifier(query), peer.max_find_matches))
    studies = [_study(a) for a in answers if _is_uid(a.get("StudyInstanceUID"), peer)]
    kept = []
    for study in studies:
        wrong_study = bool(query.study_uid) and study.study_uid != query.study_uid
        if wrong_study or not _same_patient(study, query):
            log.warning(
                "The PACS %s answered study %s, which does not match the query: left out.",
                peer.label,
                study.study_uid,
            )
            if on_foreign is not None:
                on_foreign(study)
        elif _within(study, query):
            kept.append(study)
    return kept


def find_series(peer: Peer, calling_ae_title: str, study_uid: str) -> list[Series]:
    with open_association(peer, calling_ae_title, [build_context(FindModel)]) as assoc:
        return _series(assoc, peer, study_uid)


def find_instances(peer: Peer, calling_ae_title: str, study_uid: str) -> list[Instance]:
    """Every instance of a study: one SERIES-level C-FIND, then one IMAGE-level per series,
    all on one association."""
    with open_association(peer, calling_ae_title, [build_context(FindModel)]) as assoc:
        instances: list[Instance] = []
        for series in _series(assoc, peer, study_uid):
            ds = _base("IMAGE")
            ds.StudyInstanceUID = study_uid
            ds.SeriesInstanceUID = series.series_uid
            ds.SOPInstanceUID = ""
            ds.SOPClassUID = ""
            ds.InstanceNumber = ""
            instances += [
                Instance(
                    study_uid=study_uid,
                    series_uid=series.series_uid,
                    sop_instance_uid=str(a.SOPInstanceUID),
                    sop_class_uid=str(a.get("SOPClassUID", "") or ""),
                    number=int_value(a.get("InstanceNumber")),
                    modality=series.modality,
                )
                for a in _find(assoc, peer, ds)
                if a.get("SOPInstanceUID")
            ]
        return instances


def _series(assoc: Association, peer: Peer, study_uid: str) -> list[Series]:
    ds = _base("SERIES")
    ds.StudyInstanceUID = study_uid
    for keyword in (
        "SeriesInstanceUID",
        "Modality",
        "SeriesDescription",
        "SeriesNumber",
        "NumberOfSeriesRelatedInstances",
    ):
        setattr(ds, keyword, "")
    return [
        Series(
            study_uid=study_uid,
            series_uid=str(a.SeriesInstanceUID),
            modality=str(a.get("Modality", "") or ""),
            description=str(a.get("SeriesDescription", "") or ""),
            number=int_value(a.get("SeriesNumber")),
            number_of_instances=int_value(a.get("NumberOfSeriesRelatedInstances")),
        )
        for a in _find(assoc, peer, ds)
        if a.get("SeriesInstanceUID")
    ]


def _find(
    assoc: Association, peer: Peer, identifier: Dataset, limit: int | None = None
) -> Iterator[Dataset]:
    """The answers of one C-FIND, at most `limit` of them: past that the association is
    aborted (the PACS stops sending) and TooManyMatches raised. Studies of a patient are
    limited (`peer.max_find_matches`); a study's images are as many as it holds."""
    final = None
    matches = 0
    last = time.monotonic()
    for status, answer in assoc.send_c_find(identifier, FindModel):
        if not status:
            # pynetdicom ends the same way whether the PACS aborted or our wait ran out.
            if time.monotonic() - last >= peer.dimse_timeout * 0.95:
                raise IdleTimeout(
                    f"The PACS {peer.label} did not answer the C-FIND within "
                    f"{peer.dimse_timeout:g} s (the gateway's dimse_timeout); the "
                    "association was closed."
                )
            raise AssociationAborted(f"The PACS {peer.label} broke off the C-FIND.")
        last = time.monotonic()
        code = int(status.Status)
        if code in (0xFF00, 0xFF01):
            if answer is not None:
                matches += 1
                if limit is not None and matches > limit:
                    assoc.abort()
                    raise TooManyMatches(
                        f"The PACS {peer.label} answered more than {limit:,} "
                        "matches to one query (max_find_matches): ask for a narrower date "
                        "range, or fewer modalities."
                    )
                yield answer
            continue
        final = code
        if code != 0x0000:
            raise dimse_failure("C-FIND", code, peer.label, str(status.get("ErrorComment", "")))
    if final is None:
        raise AssociationAborted(f"The PACS {peer.label} ended the C-FIND without a final status.")


def _base(level: str) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = QUERY_CHARSET
    ds.QueryRetrieveLevel = level
    return ds


def _study_identifier(query: StudyQuery) -> Dataset:
    ds = _base("STUDY")
    ds.StudyInstanceUID = query.study_uid
    ds.PatientID = query.patient_id
    ds.IssuerOfPatientID = query.issuer_of_patient_id
    ds.PatientName = query.patient_name
    ds.PatientBirthDate = _da(query.birth_date)
    ds.StudyDate = _range(query.date_from, query.date_to)
    ds.ModalitiesInStudy = "\\".join(query.modalities)
    for keyword in (
        "OtherPatientIDs",
        "PatientSex",
        "StudyTime",
        "StudyDescription",
        "AccessionNumber",
        "NumberOfStudyRelatedInstances",
        "NumberOfStudyRelatedSeries",
    ):
        setattr(ds, keyword, "")
    return ds


def _study(a: Dataset) -> Study:
    return Study(
        study_uid=str(a.StudyInstanceUID),
        patient=patient_of(a),
        study_date=date_value(a.get("StudyDate")),
        description=str(a.get("StudyDescription", "") or ""),
        accession_number=str(a.get("AccessionNumber", "") or ""),
        modalities=multi_value(a.get("ModalitiesInStudy")),
        number_of_instances=int_value(a.get("NumberOfStudyRelatedInstances")),
        number_of_series=int_value(a.get("NumberOfStudyRelatedSeries")),
    )


def _is_uid(value: object, peer: Peer) -> bool:
    """A StudyInstanceUID we may ask for again: digits and dots. An answer carrying anything
    else ("1.2.*", "../x") is left out, since it would go back to the PACS as a C-MOVE or
    C-GET key and to the store as a folder name."""
    if not value:
        return False
    try:
        check_uid(str(value), "StudyInstanceUID")
    except InvalidUID:
        log.warning(
            "The PACS %s answered a study whose UID is not a DICOM UID: left out.", peer.label
        )
        return False
    return True


def _same_patient(study: Study, query: StudyQuery) -> bool:
    patient = study.patient
    if query.patient_id and patient.patient_id.strip() != query.patient_id.strip():
        return False
    if (
        query.issuer_of_patient_id
        and patient.issuer_of_patient_id.strip() != query.issuer_of_patient_id.strip()
    ):
        return False
    if query.birth_date and patient.birth_date != query.birth_date:
        return False
    return not query.patient_name or _pn_matches(query.patient_name, patient.name)


def _pn_matches(pattern: str, name: PersonName) -> bool:
    """DICOM PN wildcard matching as PACS do it: `*` any run, `?` one character, components
    compared as one `^`-joined alphabetic value, case-insensitively (most PACS, Orthanc and
    dcmqrscp among them, match names that way)."""
    value = "^".join((name.family, name.given, name.middle, name.prefix, name.suffix)).rstrip("^")
    regex = "".join(
        ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.split("=")[0]
    )
    return re.fullmatch(regex, value, flags=re.IGNORECASE | re.DOTALL) is not None


def _within(study: Study, query: StudyQuery) -> bool:
    if study.study_date:
        if query.date_from and study.study_date < query.date_from:
            return False
        if query.date_to and study.study_date > query.date_to:
            return False
    if query.modalities and study.modalities:
        return bool(set(query.modalities) & set(study.modalities))
    return True


def _da(value: date | None) -> str:
    return value.strftime("%Y%m%d") if value else ""


def _range(start: date | None, end: date | None) -> str:
    if not start and not end:
        return ""
    return f"{_da(start)}-{_da(end)}"
