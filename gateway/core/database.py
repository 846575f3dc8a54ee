"""The gateway's database: one engine for the job tables and the gateway's own tables."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

import jobs
from gateway.core.migration_safety import backup_before_migrations

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_PG_MIGRATION_LOCK = 0x67617465  # "gate": serialises upgrades of several processes


def open_database(url: str) -> sa.Engine:
    """Engine for `url`, with the job and gateway schemas brought up to date."""
    engine = jobs.create_engine(url)
    backup_before_migrations(engine)  # and refuses a database a newer version migrated
    jobs.upgrade(engine)
    upgrade(engine)
    return engine


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
