"""The keeper's pass: finished jobs and the Idempotency-Keys of their time are forgotten after
keep_jobs_days; what is younger, and every audit event, stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from gateway.core.models import audit_event, idempotency_key
from gateway.fetch.request import FetchRequest
from gateway.service import Gateway
from gateway.storage.keeper import Keeper
from testkit.gateways import closed_pacs_settings


def test_a_pass_forgets_old_jobs_and_keys_and_keeps_the_audit_trail(tmp_path):
    gateway = Gateway(closed_pacs_settings(tmp_path / "var", keep_jobs_days=180))
    old, _ = gateway.submit_fetch(FetchRequest(pacs_patient_id="P1"), idempotency="old-key")
    new, _ = gateway.submit_fetch(FetchRequest(pacs_patient_id="P2"), idempotency="new-key")
    gateway.jobs.request_cancel(old.id)
    gateway.jobs.request_cancel(new.id)
    gateway.audit.record("someone", "study.keep", "study:1.2.3", None, {"keep": True})
    later = datetime.now(UTC) + timedelta(days=181)
    with gateway.engine.begin() as conn:  # the new ones are young at that time
        conn.execute(
            idempotency_key.update()
            .where(idempotency_key.c.key == "new-key")
            .values(created_at=later - timedelta(days=1))
        )
        conn.execute(
            sa.text("UPDATE job SET created_at = :at, finished_at = :at WHERE id = :id"),
            {"at": later - timedelta(days=1), "id": new.id},
        )
    keeper = Keeper(
        gateway.retention,
        gateway.jobs,
        gateway.engine,
        timedelta(days=180),
        clock=lambda: later,
    )

    assert keeper.run_once() == (0, 1)

    assert [j.id for j in gateway.jobs.list()] == [new.id]
    with gateway.engine.connect() as conn:
        keys = conn.scalars(sa.select(idempotency_key.c.key)).all()
        audited = conn.scalar(sa.select(sa.func.count()).select_from(audit_event))
    assert keys == ["new-key"]
    assert audited >= 1
