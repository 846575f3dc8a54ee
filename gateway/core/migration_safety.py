"""What the database is at, and a backup of it before any migration changes it.

Invariants:
- A SQLite database that holds data is copied (SQLite's online backup, consistent even while
  other connections are open) before the first migration that would change it; an empty new
  database and one already at head are not copied.
- A database at a revision this code does not know (it was migrated by a newer version) is
  refused with one sentence, before Alembic fails with "Can't locate revision".
- PostgreSQL is not copied here: its backups are the operator's (pg_dump; docs/deployment.md).
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory

import jobs.db

log = logging.getLogger(__name__)

GATEWAY_MIGRATIONS_DIR = Path(__file__).parent / "migrations"
GATEWAY_VERSION_TABLE = "gateway_alembic_version"


@dataclass(frozen=True)
class MigrationTree:
    script_location: Path
    version_table: str

    def known_revisions(self) -> set[str]:
        script = ScriptDirectory(str(self.script_location))
        return {r.revision for r in script.walk_revisions()}

    def heads(self) -> set[str]:
        return set(ScriptDirectory(str(self.script_location)).get_heads())


TREES = (
    MigrationTree(jobs.db.MIGRATIONS_DIR, jobs.db.VERSION_TABLE),
    MigrationTree(GATEWAY_MIGRATIONS_DIR, GATEWAY_VERSION_TABLE),
)


class DatabaseTooNew(ValueError):
    """The database was migrated by a newer version of the gateway."""


def database_revisions(engine: sa.Engine) -> set[str]:
    """The Alembic revisions the database is at, over the job and the gateway version tables."""
    revisions: set[str] = set()
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        for tree in TREES:
            if tree.version_table in tables:
                rows = conn.execute(sa.text(f"SELECT version_num FROM {tree.version_table}"))
                revisions.update(str(r[0]) for r in rows)
    return revisions


def pending_migrations(engine: sa.Engine) -> bool:
    """True when upgrading to head would change a database that already has tables."""
    current = database_revisions(engine)
    if not current:
        return False  # a new database: nothing in it to lose
    unknown = current - set().union(*(t.known_revisions() for t in TREES))
    if unknown:
        raise DatabaseTooNew(
            f"The database is at schema revision {', '.join(sorted(unknown))}, which this "
            "version of pacs-gateway does not know: it was upgraded by a newer version; install "
            "that version again, or restore the backup taken before that upgrade "
            "(docs/deployment.md, Updates)."
        )
    heads = set().union(*(t.heads() for t in TREES))
    return not heads <= current


def backup_before_migrations(engine: sa.Engine, *, now: datetime | None = None) -> Path | None:
    """Copy a SQLite database file that a migration is about to change; return the copy."""
    if engine.dialect.name != "sqlite":
        pending_migrations(engine)  # still refuse a database that is too new
        return None
    database = engine.url.database
    if not database or database == ":memory:" or not Path(database).is_file():
        return None
    if not pending_migrations(engine):
        return None
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    source_path = Path(database)
    target = source_path.with_name(f"{source_path.name}.before-migration-{stamp}.bak")
    with sqlite3.connect(source_path) as source, sqlite3.connect(target) as copy:
        source.backup(copy)
    source.close()
    copy.close()
    log.warning("database backed up before migrating: %s", target)
    return target
