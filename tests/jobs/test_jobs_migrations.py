"""upgrade() on empty and on current databases, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from jobs import INTERACTIVE, JobStore, upgrade
from jobs.db import VERSION_TABLE
from jobs.models import metadata


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def _version(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.scalars(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")))


def test_upgrade_creates_the_tables_and_twice_is_a_no_op(engine):
    assert _tables(engine) == set()
    upgrade(engine)
    assert _tables(engine) == {"job", "job_event", VERSION_TABLE}
    assert _version(engine) == ["0002"]
    upgrade(engine)
    assert _tables(engine) == {"job", "job_event", VERSION_TABLE}
    assert _version(engine) == ["0002"]


def test_migrations_match_the_models(engine):
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, metadata) == []


def test_leaves_the_gateways_own_alembic_version_alone(engine):
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(sa.text("INSERT INTO alembic_version VALUES ('gateway_head')"))
    upgrade(engine)
    with engine.connect() as conn:
        assert list(conn.scalars(sa.text("SELECT version_num FROM alembic_version"))) == [
            "gateway_head"
        ]


def test_processes_starting_together_upgrade_once(engine):
    errors: list[BaseException] = []

    def run() -> None:
        try:
            upgrade(engine)
        except BaseException as e:  # collected and asserted below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert _version(engine) == ["0002"]


def test_priorities_arrive_without_losing_a_job_or_an_event(engine):
    upgrade(engine, "0001")
    now = "2026-12-01 10:00:00.000000"
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO job (id, kind, state, params, checkpoint, message, progress, "
                "attempts, cancel_requested, version, created_at, updated_at) VALUES "
                "('j1', 'fetch', 'queued', '{}', '{}', 'Queued', '{}', 0, false, 1, :t, :t)"
            ),
            {"t": now},
        )
        conn.execute(
            sa.text(
                "INSERT INTO job_event (job_id, at, state, message) "
                "VALUES ('j1', :t, 'queued', 'Queued')"
            ),
            {"t": now},
        )
    upgrade(engine)
    store = JobStore(engine)
    assert store.get("j1").priority == INTERACTIVE
    assert [e.message for e in store.events("j1")] == ["Queued"]
