"""The index of what the gateway fetched: studies and their instances, by PACS patient id."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import sqlalchemy as sa

from gateway.core.models import instance, study
from pacs.models import Instance, Study


class StudyNotFound(LookupError):
    def __init__(self) -> None:
        super().__init__(
            "The gateway has no study with this UID; fetch the patient's studies first."
        )


@dataclass(frozen=True)
class IndexedSeries:
    series_uid: str
    instance_count: int


@dataclass(frozen=True)
class IndexedStudy:
    study_uid: str
    pacs_name: str
    pacs_patient_id: str
    study_date: date | None
    description: str
    modalities: tuple[str, ...]
    instance_count: int
    bytes: int
    job_id: str | None
    fetched_at: datetime
    series: tuple[IndexedSeries, ...] = ()


class StudyIndex:
    """`changed(study_uid)` is called after a study is indexed again or removed (what was
    drawn from its files, such as previews, is then out of date)."""

    def __init__(
        self,
        engine: sa.Engine,
        store_root: Path,
        changed: Callable[[str], None] = lambda _uid: None,
    ) -> None:
        self.engine = engine
        self.store_root = store_root
        self.changed = changed

    def record_study(
        self,
        pacs_name: str,
        found: Study,
        instances: Sequence[Instance],
        sizes: dict[str, int],
        job_id: str | None,
    ) -> None:
        """Index a complete study; re-indexing the same study replaces its rows."""
        rows = [
            {
                "sop_instance_uid": i.sop_instance_uid,
                "study_uid": i.study_uid,
                "series_uid": i.series_uid,
                "sop_class_uid": i.sop_class_uid,
                "instance_number": i.number,
                "size": sizes.get(i.sop_instance_uid, 0),
                "path": f"{i.study_uid}/{i.series_uid}/{i.sop_instance_uid}.dcm",
            }
            for i in instances
        ]
        with self.engine.begin() as conn:
            conn.execute(study.delete().where(study.c.study_uid == found.study_uid))
            conn.execute(
                study.insert().values(
                    study_uid=found.study_uid,
                    pacs_name=pacs_name,
                    pacs_patient_id=found.patient.patient_id,
                    study_date=found.study_date,
                    description=found.description[:255],
                    modalities="\\".join(found.modalities)[:64],
                    instance_count=len(rows),
                    bytes=sum(r["size"] for r in rows),
                    job_id=job_id,
                    fetched_at=datetime.now(UTC),
                )
            )
            if rows:
                conn.execute(instance.insert(), rows)
        self.changed(found.study_uid)

    def patient_studies(self, pacs_patient_id: str) -> list[IndexedStudy]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(study)
                .where(study.c.pacs_patient_id == pacs_patient_id)
                .order_by(study.c.study_date.desc())
            ).all()
        return [_study(r) for r in rows]

    def study(self, study_uid: str) -> IndexedStudy | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(study).where(study.c.study_uid == study_uid)).first()
            if row is None:
                return None
            series = conn.execute(
                sa.select(instance.c.series_uid, sa.func.count())
                .where(instance.c.study_uid == study_uid)
                .group_by(instance.c.series_uid)
            ).all()
        return _study(row, tuple(IndexedSeries(s, n) for s, n in series))

    def remove(self, study_uid: str) -> IndexedStudy | None:
        """Take the study and its instances out of the index; what was there (None: nothing)."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(study).where(study.c.study_uid == study_uid)).first()
            if row is None:
                return None
            conn.execute(instance.delete().where(instance.c.study_uid == study_uid))
            conn.execute(study.delete().where(study.c.study_uid == study_uid))
        self.changed(study_uid)
        return _study(row)

    def instance_paths(self, study_uid: str) -> list[Path]:
        with self.engine.connect() as conn:
            paths = conn.scalars(
                sa.select(instance.c.path).where(instance.c.study_uid == study_uid)
            ).all()
        return [self.store_root / p for p in paths]


def _study(row: sa.Row, series: tuple[IndexedSeries, ...] = ()) -> IndexedStudy:
    return IndexedStudy(
        study_uid=row.study_uid,
        pacs_name=row.pacs_name,
        pacs_patient_id=row.pacs_patient_id,
        study_date=row.study_date,
        description=row.description,
        modalities=tuple(m for m in row.modalities.split("\\") if m),
        instance_count=row.instance_count,
        bytes=row.bytes,
        job_id=row.job_id,
        fetched_at=row.fetched_at,
        series=series,
    )
