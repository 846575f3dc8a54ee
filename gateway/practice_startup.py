"""Wiring `r4.startup` into the practice side: the start-up steps and the /ready lines.

Kept out of `gateway.practice` so the start-up order lives in `r4.startup` (tested alone) and
this module only says which gateway pieces fill each step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from r4.check import R4Unreachable, check_r4, connect_check
from r4.flynotes import FlynotesClient, LicenceInfo
from r4.selfupdate import DIST_NAME, UpdateSource, ensure_version, installed_version
from r4.startup import StartupSteps
from r4.sync import bulk_upload_patients

if TYPE_CHECKING:
    from gateway.practice import PracticeSide


def practice_startup_steps(
    side: PracticeSide, flynotes: FlynotesClient, start_loops: Callable[[], None]
) -> StartupSteps:
    engine = side.engine
    assert engine is not None
    settings = side.settings
    current = installed_version(DIST_NAME) or "0"
    source = UpdateSource(
        index_url=settings.update_index_url, find_links=settings.update_find_links
    )

    def ensure(info: LicenceInfo) -> None:
        # As the hourly check: a failed update after draining resumes the workers.
        side._resume_after_failed_update(
            lambda: ensure_version(
                info.gateway_version, drain=side._drain, source=source, installed=current
            )
        )()

    def upload() -> object:
        return bulk_upload_patients(
            engine, flynotes, batch_size=settings.upload_batch_size, stop=side._stop
        )

    return StartupSteps(
        configure_reporting=side.start_reporting,
        check_r4=lambda: check_r4(engine),
        initialise=lambda: flynotes.initialise(current),
        ensure_version=ensure,
        first_upload=upload,
        start_loops=start_loops,
    )


def practice_readiness(side: PracticeSide) -> dict[str, tuple[bool, str]]:
    """`r4` (SELECT 1), and with Flynotes `flynotes` (the start-up licence check) and `sqs`
    (the command loop thread)."""
    if side.engine is None:
        return {}
    checks: dict[str, tuple[bool, str]] = {}
    try:
        connect_check(side.engine)
        checks["r4"] = (True, "reachable")
    except R4Unreachable as exc:
        checks["r4"] = (False, str(exc))
    if side.settings.flynotes_url is None:
        return checks
    if side.startup_error is not None:
        checks["flynotes"] = (False, side.startup_error)
    elif side.licence is None:
        checks["flynotes"] = (False, "the licence has not been checked yet (starting).")
    else:
        checks["flynotes"] = (True, "licence accepted")
    polling = any(t.name == "practice-commands" and t.is_alive() for t in side.threads)
    checks["sqs"] = (
        (True, "polling for commands")
        if polling
        else (False, "the SQS command loop is not running.")
    )
    return checks
