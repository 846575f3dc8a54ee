"""Transactions shared by the queue, the links and the audit log.

A staff action changes several tables (item, link, audit event) and must do so all or not at
all, so each store method takes an optional open connection and joins its transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TypeVar

import sqlalchemy as sa

import jobs

T = TypeVar("T")
# A concurrent insert of the same PACS id voids our transaction; the second try sees theirs.
_TRIES = 2


@contextmanager
def writing(engine: sa.Engine, conn: sa.Connection | None = None) -> Iterator[sa.Connection]:
    """`conn` when given (the caller's transaction), else a new write transaction.

    On SQLite the new transaction starts with BEGIN IMMEDIATE (see jobs.db): a read followed
    by a write in a deferred transaction fails at once when another connection wrote between.
    """
    if conn is not None:
        yield conn
        return
    with jobs.write_transaction(engine) as new:
        yield new


@contextmanager
def reading(engine: sa.Engine, conn: sa.Connection | None = None) -> Iterator[sa.Connection]:
    if conn is not None:
        yield conn
        return
    with engine.connect() as new:
        yield new


def now() -> datetime:
    return datetime.now(UTC)


def utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes for DateTime(timezone=True); they were stored as UTC.
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def in_transaction(engine: sa.Engine, work: Callable[[sa.Connection], T]) -> T:
    """`work(conn)` in a write transaction, run once more if it lost an insert race
    (IntegrityError): the second run sees the other side's row and decides accordingly."""
    for tries_left in range(_TRIES - 1, -1, -1):
        try:
            with writing(engine) as conn:
                return work(conn)
        except sa.exc.IntegrityError:
            if not tries_left:
                raise
    raise AssertionError("unreachable")
