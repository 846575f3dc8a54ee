"""Migration 0002 creates exactly the tables gateway.core.models describes, on SQLite and on
PostgreSQL, and the JSON columns round-trip on both."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from gateway.core import database
from gateway.core.models import metadata
from gateway.matching import Candidate, MatchDecision, ReviewReason
from gateway.matching.decision import BirthDateMatch, SexMatch
from gateway.review import AuditLog, PatientLinks, ReviewOrigin, ReviewQueue, ReviewState, actions
from pacs.models import PacsPatient, PersonName, Study

REVIEW_TABLES = {"review_item", "patient_link", "audit_event"}


@pytest.fixture
def db_url(gateway_db_url: str) -> str:
    return gateway_db_url


def test_the_migration_matches_the_models(db_url):
    engine = database.open_database(db_url)
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), metadata)
            tables = set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert tables >= REVIEW_TABLES
    ours = [d for d in diffs if _table_of(d) in REVIEW_TABLES]
    assert ours == []


def test_downgrade_to_0001_removes_the_review_tables(db_url):
    engine = database.open_database(db_url)
    try:
        _downgrade(engine, "g0001")
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
        database.upgrade(engine)  # and back up again
        with engine.connect() as conn:
            again = set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert not tables & REVIEW_TABLES
    assert again >= REVIEW_TABLES


def test_items_links_and_audit_round_trip(db_url):
    engine = database.open_database(db_url)
    try:
        queue, links, audit = ReviewQueue(engine), PatientLinks(engine), AuditLog(engine)
        patient = PacsPatient("X-1", PersonName.parse("Okafor^Chidi"), date(2012, 5, 9), "M")
        candidate = Candidate(
            1005, 0.97, 0.99, 0.95, BirthDateMatch.EXACT, SexMatch.SAME, reasons=("why",)
        )
        decision = MatchDecision.review(
            "X-1", (ReviewReason.POSSIBLE_TWIN,), ("a twin",), (candidate,)
        )
        item, created = queue.add(
            origin=ReviewOrigin.FETCH,
            pacs_name="pacs",
            patient=patient,
            study=Study("1.2.3", patient, modalities=("PX", "IO")),
            decision=decision,
            details={1005: {"family_name": "Okafor", "chart_number": "1005"}},
        )
        again, created_again = queue.add(
            origin=ReviewOrigin.FETCH,
            pacs_name="pacs",
            patient=patient,
            study=Study("1.2.3", patient),
            decision=decision,
            details={},
        )
        resolved = actions.resolve(queue, links, audit, item.id, 1005, "staff-key")

        assert created and not created_again and again.id == item.id
        assert queue.get(item.id).candidates[0].display["family_name"] == "Okafor"
        assert queue.get(item.id).modalities == ("IO", "PX")
        assert resolved.state is ReviewState.RESOLVED
        assert links.r4_patient_for("X-1", "") == 1005
        assert [e.action for e in audit.list()] == ["review.resolve", "link.create"]
        assert audit.list()[0].after["state"] == "resolved"
    finally:
        engine.dispose()


def _downgrade(engine: sa.Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(database.MIGRATIONS_DIR))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def _table_of(diff: object) -> str | None:
    """The table an autogenerate diff is about; the tuples' shapes vary by kind."""
    entry = diff[0] if isinstance(diff, list) else diff  # column changes come in lists
    for part in entry[1:]:
        if isinstance(part, sa.Table):
            return part.name
        if isinstance(part, sa.Index | sa.Constraint | sa.Column) and part.table is not None:
            return part.table.name
        if isinstance(part, str):  # (kind, schema, table name, ...)
            return part
    return None
