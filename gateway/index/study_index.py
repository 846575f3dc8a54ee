"""The index of what the gateway fetched: studies and their instances, by PACS patient id."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import sqlalchemy as sa

import jobs
from gateway.core.models import instance, removed_study, study
from pacs.models import Instance, Study


class StudyNotFound(LookupError):
    """No such study in the store; with `removal`, the gateway held it once (see `said`)."""

    def __init__(self, removal: Removal | None = None) -> None:
        self.removal = removal
        if removal is None:
            text = "The gateway has no study with this UID; fetch the patient's studies first."
        else:
            text = f"{removal.said()}; fetch it again to see it."
        super().__init__(text)


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
    last_used_at: datetime | None = None
    keep: bool = False
    pinned_until: datetime | None = None


@dataclass(frozen=True)
class Removal:
    """Why a study the gateway once held is gone, in words for the API and the pages."""

    study_uid: str
    pacs_name: str
    pacs_patient_id: str
    removed_at: datetime
    rule: str  # "staff", "unused", "max_size", "min_free"
    reason: str
    bytes: int
    instance_count: int

    def said(self) -> str:
        """ "The gateway removed this study on 7 Dec 2026 to keep 5.0 GB free on the disk"."""
        when = self.removed_at
        day = f"{when.day} {when:%b %Y}"
        return f"The gateway removed this study on {day} {self.reason}"


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
        now = datetime.now(UTC)
        with jobs.write_transaction(self.engine) as conn:
            # Staff's "keep" and a prefetch's pin belong to the study, not to one fetch of it.
            kept = conn.execute(
                sa.select(study.c.keep, study.c.pinned_until).where(
                    study.c.study_uid == found.study_uid
                )
            ).first()
            conn.execute(study.delete().where(study.c.study_uid == found.study_uid))
            conn.execute(removed_study.delete().where(removed_study.c.study_uid == found.study_uid))
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
                    fetched_at=now,
                    last_used_at=now,
                    keep=bool(kept.keep) if kept else False,
                    pinned_until=kept.pinned_until if kept else None,
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

    def remove(self, study_uid: str, *, rule: str, reason: str) -> IndexedStudy | None:
        """Take the study and its instances out of the index, remembering why (`removal`);
        what was there (None: nothing)."""
        with jobs.write_transaction(self.engine) as conn:
            row = conn.execute(sa.select(study).where(study.c.study_uid == study_uid)).first()
            if row is None:
                return None
            conn.execute(instance.delete().where(instance.c.study_uid == study_uid))
            conn.execute(study.delete().where(study.c.study_uid == study_uid))
            conn.execute(removed_study.delete().where(removed_study.c.study_uid == study_uid))
            conn.execute(
                removed_study.insert().values(
                    study_uid=study_uid,
                    pacs_name=row.pacs_name,
                    pacs_patient_id=row.pacs_patient_id,
                    removed_at=datetime.now(UTC),
                    rule=rule,
                    reason=reason[:500],
                    bytes=row.bytes,
                    instance_count=row.instance_count,
                )
            )
        self.changed(study_uid)
        return _study(row)

    def removal(self, study_uid: str) -> Removal | None:
        """Why the study is gone, if the gateway held it once and removed it."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(removed_study).where(removed_study.c.study_uid == study_uid)
            ).first()
        return None if row is None else Removal(**row._mapping)

    def touch(self, study_uid: str, at: datetime) -> None:
        """The study was used (viewed, previewed, served) at `at`."""
        with jobs.write_transaction(self.engine) as conn:
            conn.execute(
                study.update()
                .where(study.c.study_uid == study_uid, study.c.last_used_at < at)
                .values(last_used_at=at)
            )

    def set_keep(self, study_uid: str, keep: bool) -> bool:
        """Mark the study to be kept whatever the limits say (or not); False: not indexed."""
        with jobs.write_transaction(self.engine) as conn:
            done = conn.execute(
                study.update().where(study.c.study_uid == study_uid).values(keep=keep)
            )
        return done.rowcount > 0

    def pin(self, study_uid: str, until: datetime) -> bool:
        """Keep the study at least until `until` (a later pin wins); False: not indexed."""
        with jobs.write_transaction(self.engine) as conn:
            done = conn.execute(
                study.update()
                .where(
                    study.c.study_uid == study_uid,
                    sa.or_(study.c.pinned_until.is_(None), study.c.pinned_until < until),
                )
                .values(pinned_until=until)
            )
        return done.rowcount > 0

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
        last_used_at=row.last_used_at,
        keep=bool(row.keep),
        pinned_until=row.pinned_until,
    )
