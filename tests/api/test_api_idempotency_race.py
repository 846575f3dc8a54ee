"""The same Idempotency-Key sent with different bodies at the same moment: exactly one job,
every other request refused by name, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from uuid import uuid4

import pytest
import sqlalchemy as sa

from gateway.fetch.request import FetchRequest
from gateway.fetch.submit import IdempotencyConflict
from gateway.service import Gateway
from testkit.gateways import closed_pacs_settings

RACERS = 8


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def racing_gateway(request, tmp_path):
    extra = {}
    admin = None
    if request.param == "postgresql":
        server: sa.URL = request.getfixturevalue("postgres_server")
        name = f"idem_{uuid4().hex[:12]}"
        admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        extra["database_url"] = server.set(database=name).render_as_string(hide_password=False)
    gateway = Gateway(closed_pacs_settings(tmp_path / "var", **extra))
    yield gateway
    gateway.engine.dispose()
    if admin is not None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _race(gateway: Gateway, requests: list[FetchRequest]) -> list[object]:
    start = threading.Barrier(len(requests))

    def submit(request: FetchRequest) -> object:
        start.wait(10)
        try:
            return gateway.submit_fetch(request, idempotency="race-1", api_key_id="k1")[0].id
        except IdempotencyConflict as exc:
            return exc

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(submit, requests))


def test_different_bodies_with_one_key_at_once_make_exactly_one_job(racing_gateway):
    bodies = [
        FetchRequest(pacs_patient_id="PAT-1", date_from=date(2024, 1, day + 1))
        for day in range(RACERS)
    ]

    outcomes = _race(racing_gateway, bodies)

    jobs_made = [o for o in outcomes if isinstance(o, str)]
    refused = [o for o in outcomes if isinstance(o, IdempotencyConflict)]
    assert len(jobs_made) == 1 and len(refused) == RACERS - 1
    assert all("'race-1'" in str(r) for r in refused)
    assert [j.id for j in racing_gateway.jobs.list()] == jobs_made
    # Later, the same: the key keeps naming its job.
    with pytest.raises(IdempotencyConflict):
        other = FetchRequest(pacs_patient_id="PAT-1", date_from=date(2024, 2, 1))
        racing_gateway.submit_fetch(other, idempotency="race-1", api_key_id="k1")


def test_the_same_body_with_one_key_at_once_gives_everyone_the_same_job(racing_gateway):
    body = FetchRequest(pacs_patient_id="PAT-1")

    outcomes = _race(racing_gateway, [body] * RACERS)

    assert len(set(outcomes)) == 1 and isinstance(outcomes[0], str)
    assert len(racing_gateway.jobs.list()) == 1
