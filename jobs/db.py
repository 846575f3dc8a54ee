"""Engine set-up and schema migrations of the job store."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import URL, Connection, Engine, event, make_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "jobs_alembic_version"
# Execution option that marks a transaction as one that writes; on SQLite it then takes the
# write lock up front (BEGIN IMMEDIATE). A deferred transaction that reads first and writes
# later fails at once with "database is locked" when another connection wrote in between:
# busy_timeout cannot help there, because the read snapshot is already stale.
WRITE_OPTION = "jobs_write"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Arbitrary constant: serialises concurrent upgrade() calls of several gateway processes.
_PG_MIGRATION_LOCK = 0x6A6F6273  # "jobs"


def create_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An Engine fit for JobStore. SQLite (file only) gets WAL, a busy timeout, foreign keys
    and explicit transactions usable from many threads; other backends are passed through."""
    url = make_url(url)
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(url, **kwargs)
    if url.database in (None, "", ":memory:"):
        raise ValueError("the job store needs a SQLite file: worker threads share it")
    Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    connect_args = {"check_same_thread": False, **kwargs.pop("connect_args", {})}
    engine = sa.create_engine(url, connect_args=connect_args, **kwargs)
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def write_transaction(engine: Engine) -> AbstractContextManager[Connection]:
    """A transaction that will write: on SQLite it takes the write lock up front, so it
    cannot fail half-way because another connection wrote after its first read."""
    return engine.execution_options(**{WRITE_OPTION: True}).begin()


def is_prepared(engine: Engine) -> bool:
    """True unless `engine` is SQLite made without create_engine() above."""
    return engine.dialect.name != "sqlite" or event.contains(engine, "begin", _sqlite_on_begin)


def _sqlite_on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    # Hand transaction control to SQLAlchemy's "begin" event: pysqlite's own implicit BEGIN
    # is deferred and is skipped before DDL, which would make migrations non-transactional.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    # In WAL mode NORMAL stays consistent after a crash; a power cut may lose the last
    # commits, which the leases and idempotent handlers already tolerate.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get(WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the job tables to `revision`; a no-op when they are already there.

    Safe to call from several processes at start: they queue on a lock and the later ones
    find nothing to do."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
