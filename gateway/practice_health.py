"""The R4 database's readiness check: reported by /ready, never a reason for a 503.

An R4 outage stops matching and the practice side, not job polls: /ready lists it in its
body only. The detail names the failure's kind, never a connection string (it may hold a
password) or patient data.
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from gateway.service import Check, Gateway


def r4_check(gateway: Gateway) -> Check | None:
    """None when no R4 database is configured here."""
    engine = gateway.practice.engine
    if engine is None:
        return None
    started = time.perf_counter()
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # every driver has its own errors; the kind is enough here
        return Check(False, f"the R4 database does not answer ({type(exc).__name__})")
    return Check(True, "the R4 database answers", (time.perf_counter() - started) * 1000)
