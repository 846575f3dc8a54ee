"""The practice side's start-up, in the order the connector this replaces used (the seed):

1. error reporting (Rollbar) first, with `sys.excepthook` and `threading.excepthook`, so any
   later start-up failure (a busy port, a bad setting) is reported, scrubbed, before exit;
2. R4: connectivity (`SELECT 1`) and the schema check of the mapping;
3. the Flynotes licence: an invalid key is fatal, reported once, exit `LICENCE_EXIT_CODE`;
4. the version check and self-update (a RestartRequested ends start-up for a restart);
5. the first bulk upload, then the loops (SQS polling, the hourly schedule) start;
and the process exits for a restart once it has run `max_uptime` (24 h by default).

Invariants: nothing here starts a thread before steps 1-4 have passed; every step is a callable
handed in (no import of `gateway`), so the order is tested on its own; a failure ends start-up
with a `StartupFailed` carrying one sentence and the exit code the service manager sees.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from r4.check import CheckResult, R4Unreachable
from r4.flynotes import FlynotesRequestError, LicenceInfo
from r4.handlers import RESTART_EXIT_CODE, RestartRequested

log = logging.getLogger(__name__)

# Exit codes (docs/deployment.md): 75 = restart me (update, restart command, max uptime,
# R4 or Flynotes not reachable yet); 78 (EX_CONFIG) = the licence key is not valid, or the R4
# mapping does not match the database: restarting will not help until someone fixes settings.
LICENCE_EXIT_CODE = 78
MAPPING_EXIT_CODE = 78
UNAVAILABLE_EXIT_CODE = RESTART_EXIT_CODE
DEFAULT_MAX_UPTIME = 24 * 3600.0


class StartupFailed(Exception):
    """Start-up cannot go on; `str()` is one sentence for the operator, `exit_code` the exit."""

    def __init__(self, sentence: str, exit_code: int) -> None:
        super().__init__(sentence)
        self.exit_code = exit_code


ExceptionReport = Callable[[BaseException], None]


def install_excepthooks(report: ExceptionReport) -> Callable[[], None]:
    """Send uncaught exceptions (main thread and every other thread) to `report` before the
    usual handling; returns a function restoring the previous hooks."""
    previous_sys, previous_threading = sys.excepthook, threading.excepthook

    def sys_hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        _safely(report, exc)
        previous_sys(kind, exc, tb)

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None and not isinstance(args.exc_value, SystemExit):
            _safely(report, args.exc_value)
        previous_threading(args)

    sys.excepthook = sys_hook
    threading.excepthook = thread_hook

    def restore() -> None:
        sys.excepthook, threading.excepthook = previous_sys, previous_threading

    return restore


def _safely(report: ExceptionReport, exc: BaseException) -> None:
    try:
        report(exc)
    except Exception:  # a broken reporter must not hide the original error
        log.exception("reporting an uncaught exception failed")


@dataclass
class StartupSteps:
    """The pieces start-up runs, in this order. Each raises to stop start-up."""

    configure_reporting: Callable[[], None]
    check_r4: Callable[[], list[CheckResult]]  # connect + schema; raises R4Unreachable
    initialise: Callable[[], LicenceInfo]  # the licence check (Flynotes initialise)
    ensure_version: Callable[[LicenceInfo], None]  # self-update; may raise RestartRequested
    first_upload: Callable[[], object]
    start_loops: Callable[[], None]  # SQS loop and hourly schedule threads


def run_startup(
    steps: StartupSteps,
    report: Callable[[str, dict[str, Any]], None],
    on_step: Callable[[str], None] | None = None,
) -> LicenceInfo:
    """Run start-up in order; raise StartupFailed (already reported through `report`) or
    RestartRequested (self-update). `report(sentence, extra)` reaches Rollbar."""

    def step(name: str) -> None:
        log.info("start-up: %s", name)
        if on_step is not None:
            on_step(name)

    step("reporting")
    steps.configure_reporting()

    step("r4")
    try:
        results = steps.check_r4()
    except R4Unreachable as exc:
        raise _fail(report, str(exc), UNAVAILABLE_EXIT_CODE, "r4") from None
    failed = [r for r in results if not r.ok]
    unreachable = next((r for r in failed if r.name == "r4 connect"), None)
    if unreachable is not None:
        raise _fail(report, unreachable.detail, UNAVAILABLE_EXIT_CODE, "r4")
    if failed:
        names = ", ".join(r.name for r in failed[:5])
        raise _fail(
            report,
            f"The R4 database does not match the configured mapping ({len(failed)} checks "
            f"failed: {names}); run `pacs-gateway check` and fix [r4] before restarting.",
            MAPPING_EXIT_CODE,
            "r4 schema",
        )

    step("licence")
    try:
        info = steps.initialise()
    except FlynotesRequestError as exc:
        if exc.status in (401, 403):
            raise _fail(
                report,
                "Flynotes does not recognise this practice's licence key: set the right "
                "flynotes_licence_key; restarting will not help until then.",
                LICENCE_EXIT_CODE,
                "licence",
            ) from None
        sentence = f"{exc}; retrying later may help."
        raise _fail(report, sentence, UNAVAILABLE_EXIT_CODE, "licence") from None
    except Exception as exc:  # Flynotes unreachable or failing: the service restarts us
        raise _fail(
            report,
            f"Flynotes could not be asked about the licence ({type(exc).__name__}); the "
            "service will restart and try again.",
            UNAVAILABLE_EXIT_CODE,
            "licence",
        ) from None

    step("version")
    try:
        steps.ensure_version(info)
    except RestartRequested:
        raise  # updated: exit 75 and come back as the new version
    except Exception as exc:
        # The old version keeps running; the hourly check tries the update again.
        report("the self-update failed", {"error": type(exc).__name__})

    step("first upload")
    try:
        steps.first_upload()
    except RestartRequested:
        raise
    except Exception as exc:
        # Not fatal: the hourly schedule tries again; the SQS loop must still start.
        report("the first bulk upload failed", {"error": type(exc).__name__})

    step("loops")
    steps.start_loops()
    return info


def _fail(
    report: Callable[[str, dict[str, Any]], None], sentence: str, exit_code: int, where: str
) -> StartupFailed:
    report(sentence, {"where": f"start-up: {where}", "exit_code": exit_code})
    return StartupFailed(sentence, exit_code)


class Uptime:
    """`expired()` once the process has run `max_uptime` seconds: the schedule then raises
    RestartRequested so the service manager starts a fresh process (the seed's 24 h)."""

    def __init__(
        self, max_uptime: float = DEFAULT_MAX_UPTIME, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_uptime = max_uptime
        self._clock = clock
        self._started = clock()

    def expired(self) -> bool:
        return self._clock() - self._started >= self.max_uptime

    def check(self) -> None:
        """A scheduler task action."""
        if self.expired():
            raise RestartRequested(
                f"up for {self.max_uptime / 3600:g} h: restarting as planned",
                RESTART_EXIT_CODE,
            )
