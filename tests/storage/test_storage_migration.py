"""Migration 0003 (retention): the study index gains its last-use, keep and pin columns and
the removed-study table, exactly as gateway.core.models says, on SQLite and PostgreSQL; a
study indexed before it counts as last used when it was fetched."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from gateway.core import database
from gateway.core.models import metadata

RETENTION_TABLES = {"study", "removed_study", "instance"}


@pytest.fixture
def db_url(gateway_db_url: str) -> str:
    return gateway_db_url


def _migrate(engine: sa.Engine, revision: str, *, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(database.MIGRATIONS_DIR))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, revision)


def test_the_migration_matches_the_models_and_carries_studies_over(db_url):
    engine = database.open_database(db_url)
    try:
        _migrate(engine, "g0002", down=True)
        fetched = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO study (study_uid, pacs_name, pacs_patient_id, study_date, "
                    "description, modalities, instance_count, bytes, job_id, fetched_at) "
                    "VALUES ('1.2.3', 'main', 'P1', NULL, '', 'CT', 1, 10, 'j', :at)"
                ),
                {"at": fetched},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO instance (sop_instance_uid, study_uid, series_uid, "
                    "sop_class_uid, instance_number, size, path) "
                    "VALUES ('1.2.3.1', '1.2.3', '1.2.3.9', '1.2', 1, 10, '1.2.3/1.2.3.9/x.dcm')"
                )
            )
        database.upgrade(engine)
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), metadata)
            row = conn.execute(sa.text("SELECT last_used_at, keep, pinned_until FROM study")).one()
            instances = conn.execute(sa.text("SELECT count(*) FROM instance")).scalar()
    finally:
        engine.dispose()
    ours = [d for d in diffs if _table(d) in RETENTION_TABLES]
    assert ours == []
    last_used = row[0] if isinstance(row[0], datetime) else datetime.fromisoformat(row[0])
    assert last_used.replace(tzinfo=UTC) == fetched
    assert (bool(row[1]), row[2]) == (False, None)
    assert instances == 1  # the index's instances survive the migration


def test_downgrade_removes_what_it_added_and_keeps_the_index(db_url):
    engine = database.open_database(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO study (study_uid, pacs_name, pacs_patient_id, description, "
                    "modalities, instance_count, bytes, fetched_at, last_used_at, keep) "
                    "VALUES ('1.2.3', 'main', 'P1', '', 'CT', 1, 10, :at, :at, false)"
                ),
                {"at": datetime(2026, 3, 1, tzinfo=UTC)},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO instance (sop_instance_uid, study_uid, series_uid, "
                    "sop_class_uid, instance_number, size, path) "
                    "VALUES ('1.2.3.1', '1.2.3', '1.2.3.9', '1.2', 1, 10, 'x.dcm')"
                )
            )
        _migrate(engine, "g0002", down=True)
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            tables = set(inspector.get_table_names())
            columns = {c["name"] for c in inspector.get_columns("study")}
            instances = conn.execute(sa.text("SELECT count(*) FROM instance")).scalar()
    finally:
        engine.dispose()
    assert "removed_study" not in tables
    assert not columns & {"last_used_at", "keep", "pinned_until"}
    assert instances == 1


def _table(diff: object) -> str | None:
    entry = diff[0] if isinstance(diff, list) else diff
    for part in entry[1:]:
        if isinstance(part, sa.Table):
            return part.name
        if isinstance(part, sa.Index | sa.Constraint | sa.Column) and part.table is not None:
            return part.table.name
        if isinstance(part, str):
            return part
    return None
