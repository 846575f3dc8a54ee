"""A study pinned for an appointment that has not passed survives the limits, even when it
is the least recently used; once the pin has passed it goes like any other."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from gateway.core.models import study
from gateway.service import Gateway
from pacs.models import Instance, PacsPatient, Study
from testkit.gateways import closed_pacs_settings

MB = 10**6


def _index(gateway: Gateway, n: int, hours_ago: float) -> str:
    uid = f"1.2.826.0.1.3680043.10.77.{n}"
    found = Study(
        study_uid=uid, patient=PacsPatient(patient_id=f"P{n}"), study_date=date(2026, 1, 1)
    )
    instances = [Instance(uid, f"{uid}.1", f"{uid}.1.1")]
    gateway.index.record_study("main", found, instances, {f"{uid}.1.1": 10 * MB}, job_id="job")
    with gateway.engine.begin() as conn:
        conn.execute(
            study.update()
            .where(study.c.study_uid == uid)
            .values(last_used_at=datetime.now(UTC) - timedelta(hours=hours_ago))
        )
    return uid


def test_a_pinned_study_survives_until_its_pin_has_passed(tmp_path):
    gateway = Gateway(closed_pacs_settings(tmp_path / "var", storage_max_gb=0.025))
    pinned = _index(gateway, 1, hours_ago=9)  # the least recently used
    other = _index(gateway, 2, hours_ago=5)
    gateway.index.pin(pinned, datetime.now(UTC) + timedelta(days=1))

    assert gateway.retention.make_room(10 * MB) is None
    assert gateway.index.study(pinned) is not None
    assert gateway.index.study(other) is None
    assert gateway.index.removal(other).rule == "max_size"

    # A shorter pin never shortens a longer one.
    assert not gateway.index.pin(pinned, datetime.now(UTC) - timedelta(days=1))
    # The appointment has passed: the pin no longer holds.
    with gateway.engine.begin() as conn:
        conn.execute(
            study.update()
            .where(study.c.study_uid == pinned)
            .values(pinned_until=datetime.now(UTC) - timedelta(hours=1))
        )
    assert gateway.retention.make_room(20 * MB) is None
    assert gateway.index.study(pinned) is None
