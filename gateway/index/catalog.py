"""Read-only queries over the study index for DICOMweb and previews.

The index (gateway.core.models `study` and `instance`) says what the store holds; these queries
add what StudyIndex does not offer: one series' files, and study searches with QIDO-RS
filters and paging. Files are named by the index's relative path under the store root.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from gateway.core.models import instance, study

_MODALITY = re.compile(r"^[A-Z0-9_]{1,16}$")
_DA = re.compile(r"^\d{8}$")


class BadQuery(ValueError):
    """A QIDO-RS filter that cannot be understood; the message names the key, not the value."""


@dataclass(frozen=True)
class StoredFile:
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    number: int | None
    path: Path


@dataclass(frozen=True)
class StudyFilter:
    """QIDO-RS study matching: exact PatientID, a list of UIDs, a date or date range, and
    any of several modalities. Empty fields match everything."""

    patient_id: str | None = None
    study_uids: tuple[str, ...] = ()
    date_from: date | None = None
    date_to: date | None = None
    modalities: tuple[str, ...] = ()
    # True when StudyDate was given: studies without a date then never match.
    dated: bool = field(default=False)


@dataclass(frozen=True)
class StudyRow:
    study_uid: str
    pacs_patient_id: str
    study_date: date | None
    modalities: tuple[str, ...]
    instance_count: int
    series_count: int


class Catalog:
    def __init__(self, engine: sa.Engine, store_root: Path) -> None:
        self.engine = engine
        self.store_root = Path(store_root)

    def has_study(self, study_uid: str) -> bool:
        with self.engine.connect() as conn:
            found = conn.scalar(sa.select(study.c.study_uid).where(study.c.study_uid == study_uid))
        return found is not None

    def files(
        self, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
    ) -> list[StoredFile]:
        """The study's (series', instance's) files, by series, instance number, SOP UID."""
        query = sa.select(
            instance.c.study_uid,
            instance.c.series_uid,
            instance.c.sop_instance_uid,
            instance.c.sop_class_uid,
            instance.c.instance_number,
            instance.c.path,
        ).where(instance.c.study_uid == study_uid)
        if series_uid is not None:
            query = query.where(instance.c.series_uid == series_uid)
        if sop_uid is not None:
            query = query.where(instance.c.sop_instance_uid == sop_uid)
        query = query.order_by(
            instance.c.series_uid,
            # Instances without a number last, on every database.
            instance.c.instance_number.is_(None),
            instance.c.instance_number,
            instance.c.sop_instance_uid,
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [StoredFile(r[0], r[1], r[2], r[3], r[4], self.store_root / r[5]) for r in rows]

    def search_studies(self, match: StudyFilter, *, limit: int, offset: int) -> list[StudyRow]:
        series_count = (
            sa.select(sa.func.count(sa.distinct(instance.c.series_uid)))
            .where(instance.c.study_uid == study.c.study_uid)
            .scalar_subquery()
        )
        query = sa.select(
            study.c.study_uid,
            study.c.pacs_patient_id,
            study.c.study_date,
            study.c.modalities,
            study.c.instance_count,
            series_count,
        )
        if match.patient_id is not None:
            query = query.where(study.c.pacs_patient_id == match.patient_id)
        if match.study_uids:
            query = query.where(study.c.study_uid.in_(match.study_uids))
        if match.dated:
            query = query.where(study.c.study_date.is_not(None))
        if match.date_from is not None:
            query = query.where(study.c.study_date >= match.date_from)
        if match.date_to is not None:
            query = query.where(study.c.study_date <= match.date_to)
        if match.modalities:
            query = query.where(sa.or_(*map(_has_modality, match.modalities)))
        query = (
            query.order_by(study.c.study_date.desc(), study.c.study_uid).limit(limit).offset(offset)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            StudyRow(r[0], r[1], r[2], tuple(m for m in r[3].split("\\") if m), r[4], r[5] or 0)
            for r in rows
        ]


def _has_modality(modality: str) -> sa.ColumnElement[bool]:
    # The column holds "CT\MR": match a whole value, never a part of one ("C" is not "CT").
    # ESCAPE '!' so the backslash is a plain character on PostgreSQL too.
    column = study.c.modalities
    return sa.or_(
        column == modality,
        column.like(f"{modality}\\%", escape="!"),
        column.like(f"%\\{modality}", escape="!"),
        column.like(f"%\\{modality}\\%", escape="!"),
    )


def parse_filter(
    patient_id: str | None,
    study_uids: str | None,
    study_date: str | None,
    modalities: str | None,
) -> StudyFilter:
    """QIDO-RS query values as a StudyFilter; raises BadQuery."""
    uids = _split(study_uids)
    if any(not re.fullmatch(r"[0-9.]{1,64}", uid) for uid in uids):
        raise BadQuery("StudyInstanceUID must be UIDs separated by commas")
    mods = tuple(m.upper() for m in _split(modalities))
    if any(not _MODALITY.match(m) for m in mods):
        raise BadQuery("ModalitiesInStudy must be modality codes such as CT or IO")
    date_from, date_to = _date_range(study_date) if study_date else (None, None)
    return StudyFilter(
        patient_id=patient_id or None,
        study_uids=uids,
        date_from=date_from,
        date_to=date_to,
        modalities=mods,
        dated=bool(study_date),
    )


def _split(value: str | None) -> tuple[str, ...]:
    # QIDO-RS lists values with commas; DICOM itself with backslashes. Accept both.
    if not value:
        return ()
    return tuple(v.strip() for v in re.split(r"[,\\]", value) if v.strip())


def _date_range(value: str) -> tuple[date | None, date | None]:
    """DICOM DA matching: 'YYYYMMDD', 'A-B', '-B' or 'A-' (PS3.4 C.2.2.2.5)."""
    start, dash, end = value.partition("-")
    if not dash:
        end = start
    try:
        low = _da(start) if start else None
        high = _da(end) if end else None
    except ValueError:
        raise BadQuery("StudyDate must be YYYYMMDD or a range YYYYMMDD-YYYYMMDD") from None
    if low is None and high is None:
        raise BadQuery("StudyDate must be YYYYMMDD or a range YYYYMMDD-YYYYMMDD")
    return low, high


def _da(text: str) -> date:
    if not _DA.match(text):
        raise ValueError(text)
    return date(int(text[:4]), int(text[4:6]), int(text[6:]))


def series_of(files: Sequence[StoredFile]) -> dict[str, list[StoredFile]]:
    """Files grouped by series UID, in the order given."""
    grouped: dict[str, list[StoredFile]] = {}
    for f in files:
        grouped.setdefault(f.series_uid, []).append(f)
    return grouped
