"""The practice side inside `serve`: R4, Flynotes, the SQS command loop, schedules, Rollbar.

Everything is off until configured:
- `rollbar_access_token`: errors (and ERROR log records) go to Rollbar, patient data scrubbed;
- an R4 database (`r4_database_url` or `r4_odbc_driver`): fetches may name an R4 patient
  (the planner in gateway.fetch.plan finds their PACS studies);
- R4 and Flynotes (`flynotes_url` + `flynotes_licence_key`): two threads, the SQS command loop
  and the scheduler (licence/version check, then the bulk upload, each hourly by default).

A restart request (a `restart` message, or a self-update after draining the job workers) stops
both threads and asks whoever runs the gateway to stop gracefully; `serve` then exits with
`exit_code` (75) and the service manager starts it again.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import replace

from sqlalchemy import Engine

import jobs
from gateway.core.migration_safety import database_revisions
from gateway.core.settings import Settings
from gateway.matching import IdRule
from gateway.practice import reporting
from r4.check import R4Unreachable, check_r4, connect_check
from r4.commands import CommandLoop, LoopSettings
from r4.database import create_r4_engine
from r4.flynotes import FlynotesClient, LicenceInfo, SqsAccess
from r4.handlers import LoggingReporter, PracticeCommandHandler, Reporter, RestartRequested
from r4.mapping import R4Mapping
from r4.messages import FetchStudies
from r4.schedule import Scheduler, Task, licence_check, practice_tasks, run_in_thread
from r4.selfupdate import DIST_NAME, UpdateSource, ensure_version, installed_version
from r4.startup import StartupFailed, StartupSteps, Uptime, install_excepthooks, run_startup
from r4.sync import bulk_upload_patients

log = logging.getLogger(__name__)

# Idempotency keys are scoped by API key id; commands from Flynotes share this pseudo id.
FLYNOTES_KEY_ID = "flynotes"
# How long a self-update waits for running fetch jobs to reach a checkpoint and be released.
DRAIN_TIMEOUT = 60.0


def id_rule(settings: Settings) -> IdRule:
    return IdRule(
        prefix=settings.pacs_id_rule_prefix,
        suffix=settings.pacs_id_rule_suffix,
        pad_width=settings.pacs_id_rule_pad_width,
    )


def _raise_sigterm() -> None:
    # Default for runners other than `serve`: the same graceful path as a service stop.
    signal.raise_signal(signal.SIGTERM)


# A Flynotes fetch-studies command, as the gateway queues it (idempotent by its request id).
SubmitFetch = Callable[..., tuple[jobs.Job, bool]]


class PracticeSide:
    """Built by Gateway.__init__; started and stopped with it.

    It gets what it needs of the gateway as callables: `submit_fetch` (a Flynotes command
    queues a fetch), `drain` and `resume` (a self-update stops the job workers, and restarts
    them when the update fails)."""

    def __init__(
        self,
        settings: Settings,
        *,
        submit_fetch: SubmitFetch,
        drain: Callable[[float], None],
        resume: Callable[[], None],
        fetch_recent: Callable[[int], object] | None = None,
    ) -> None:
        """`fetch_recent`: with [prefetch] on_patient_sync, a `patient-sync` queues a fetch
        of that R4 patient's recent studies through it."""
        self.settings = settings
        self._submit_fetch = submit_fetch
        self._fetch_recent = fetch_recent if settings.prefetch.on_patient_sync else None
        self._drain_workers = drain
        self._resume_workers = resume
        url = settings.r4_url()
        self.engine: Engine | None = _r4_engine(url, settings.r4_mapping()) if url else None
        self.exit_code: int | None = None  # set once a restart was requested
        self._request_exit: Callable[[], None] = _raise_sigterm
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._flynotes: FlynotesClient | None = None
        self._log_handler: logging.Handler | None = None
        self._exit_lock = threading.Lock()
        self._restore_hooks: Callable[[], None] | None = None
        self.licence: LicenceInfo | None = None  # from the start-up licence check
        self.startup_error: str | None = None

    def exit_through(self, request_exit: Callable[[], None]) -> None:
        """How a restart request stops the process: `serve` tells uvicorn to shut down; the
        default raises SIGTERM, the same graceful path as a service stop."""
        self._request_exit = request_exit

    @property
    def threads(self) -> list[threading.Thread]:
        return list(self._threads)

    def start(self) -> None:
        """Start-up in the seed's order (`r4.startup.run_startup`): reporting, R4 and its
        schema, the licence, the version, the first bulk upload, then the two threads. A
        failure sets `exit_code` (78: fix settings; 75: try again) and asks to exit."""
        self.start_reporting()
        if not self.settings.practice_configured:
            log.info("practice side off: R4 and Flynotes are not both configured")
            return
        assert self.engine is not None and self.settings.flynotes_url is not None
        assert self.settings.flynotes_licence_key is not None
        self._stop.clear()
        self._flynotes = FlynotesClient(
            self.settings.flynotes_url, self.settings.flynotes_licence_key.get_secret_value()
        )
        reporter = self._reporter()
        handler = self._command_handler(self._flynotes, reporter)
        loop = CommandLoop(
            handler,
            self._sqs_access,
            reporter=reporter,
            settings=LoopSettings(
                wait_time_seconds=self.settings.sqs_wait_seconds,
                endpoint_url=self.settings.sqs_endpoint_url,
            ),
        )
        # Start-up ran the licence check and the upload once: the schedule takes over later.
        tasks = [replace(t, run_on_start=False) for t in self._tasks(self._flynotes)]
        tasks.append(Task("max uptime", Uptime(self.settings.r4.max_uptime).check, 60.0))
        scheduler = Scheduler(tasks, reporter=reporter)

        def start_loops() -> None:
            self._threads = [
                run_in_thread("practice-commands", loop.run, self._stop, self._on_restart),
                run_in_thread("practice-schedule", scheduler.run, self._stop, self._on_restart),
            ]
            log.info("practice side started: SQS command loop and schedules")

        try:
            self.licence = run_startup(
                self._startup_steps(self._flynotes, start_loops), self._report_startup
            )
        except StartupFailed as exc:
            self.startup_error = str(exc)
            self._exit(exc.exit_code, str(exc))
        except RestartRequested as exc:
            self._on_restart(exc)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("%s did not stop within %g s", thread.name, timeout)
        self._threads = []
        if self._flynotes is not None:
            self._flynotes.close()
            self._flynotes = None
        self._stop_reporting()

    # --- wiring ---------------------------------------------------------------------------

    def _command_handler(
        self, flynotes: FlynotesClient, reporter: Reporter
    ) -> PracticeCommandHandler:
        assert self.engine is not None
        return PracticeCommandHandler(
            engine=self.engine,
            flynotes=flynotes,
            create_fetch_job=self._create_fetch_job,
            reporter=reporter,
            upload_batch_size=self.settings.upload_batch_size,
            stop=self._stop,
            on_patient_sync=self._fetch_recent,
        )

    def _tasks(self, flynotes: FlynotesClient) -> list[Task]:
        engine = self.engine
        assert engine is not None
        source = UpdateSource(
            index_url=self.settings.update_index_url, find_links=self.settings.update_find_links
        )

        def bulk_upload() -> object:
            return bulk_upload_patients(
                engine, flynotes, batch_size=self.settings.upload_batch_size, stop=self._stop
            )

        check = licence_check(
            flynotes,
            drain=self._drain,
            source=source,
            database_revisions=lambda: database_revisions(self.gateway.engine),
            state_file=self.settings.data_dir / "selfupdate-attempts.json",
        )
        return practice_tasks(
            bulk_upload=bulk_upload,
            check_licence=self._resume_after_failed_update(check),
            bulk_interval=self.settings.bulk_upload_interval,
            licence_interval=self.settings.licence_check_interval,
        )

    def _create_fetch_job(self, command: FetchStudies) -> object:
        job, created = self._submit_fetch(command, api_key_id=FLYNOTES_KEY_ID)
        log.info("fetch-studies: job %s (%s)", job.id, "new" if created else "existing")
        return job

    def _sqs_access(self) -> SqsAccess:
        assert self._flynotes is not None
        return self._flynotes.initialise(installed_version(DIST_NAME) or "0").sqs

    def _drain(self) -> None:
        self._drain_workers(DRAIN_TIMEOUT)

    def _resume_after_failed_update(self, check: Callable[[], None]) -> Callable[[], None]:
        """If the update fails after draining, the old version keeps running: restart the
        workers, or this process would accept fetches and never run them."""

        def run() -> None:
            try:
                check()
            except RestartRequested:
                raise
            except Exception:
                self._resume_workers()
                raise

        return run

    def _on_restart(self, exc: RestartRequested) -> None:
        self._exit(exc.exit_code, f"stopping to restart (exit code {exc.exit_code}): {exc}")

    def _exit(self, exit_code: int, sentence: str) -> None:
        with self._exit_lock:
            if self.exit_code is not None:
                return  # the other thread asked first; one exit is enough
            self.exit_code = exit_code
        log.warning("%s", sentence)
        self._stop.set()
        self._request_exit()

    def _report_startup(self, sentence: str, extra: dict[str, object]) -> None:
        self._reporter().report_message(sentence, "critical", extra)

    def readiness(self) -> dict[str, tuple[bool, str]]:
        """R4 and Flynotes/SQS lines for /ready (empty when the practice side is off)."""
        return self._readiness()

    # --- reporting ------------------------------------------------------------------------

    def start_reporting(self) -> None:
        """Rollbar and the exception hooks; first thing the gateway does (idempotent)."""
        self._start_reporting()

    def _start_reporting(self) -> None:
        token = self.settings.rollbar_access_token
        if token is None or self._log_handler is not None:
            return
        reporting.configure(
            token.get_secret_value(),
            self.settings.rollbar_environment,
            endpoint=self.settings.rollbar_endpoint,
            code_version=installed_version(DIST_NAME),
        )
        self._log_handler = reporting.install_logging_handler()
        # Uncaught errors in any thread (a busy port at start-up...) reach Rollbar before exit.
        self._restore_hooks = install_excepthooks(
            lambda exc: reporting.report_exception(exc, extra={"where": "uncaught"})
        )
        log.info("errors are reported to Rollbar (%s)", self.settings.rollbar_environment)

    def _stop_reporting(self) -> None:
        if self._log_handler is None:
            return
        logging.getLogger().removeHandler(self._log_handler)
        self._log_handler = None
        if self._restore_hooks is not None:
            self._restore_hooks()
            self._restore_hooks = None
        reporting.flush()  # reports still queued on rollbar's threads leave before exit

    def _reporter(self) -> Reporter:
        return reporting.RollbarReporter() if self._log_handler else LoggingReporter()

    def _startup_steps(
        self, flynotes: FlynotesClient, start_loops: Callable[[], None]
    ) -> StartupSteps:
        """Which gateway pieces fill each step of `r4.startup`'s order."""
        engine = self.engine
        assert engine is not None
        settings = self.settings
        current = installed_version(DIST_NAME) or "0"
        source = UpdateSource(
            index_url=settings.update_index_url, find_links=settings.update_find_links
        )

        def ensure(info: LicenceInfo) -> None:
            # As the hourly check: a failed update after draining resumes the workers.
            self._resume_after_failed_update(
                lambda: ensure_version(
                    info.gateway_version, drain=self._drain, source=source, installed=current
                )
            )()

        def upload() -> object:
            return bulk_upload_patients(
                engine, flynotes, batch_size=settings.upload_batch_size, stop=self._stop
            )

        return StartupSteps(
            configure_reporting=self.start_reporting,
            check_r4=lambda: check_r4(engine),
            initialise=lambda: flynotes.initialise(current),
            ensure_version=ensure,
            first_upload=upload,
            start_loops=start_loops,
        )

    def _readiness(self) -> dict[str, tuple[bool, str]]:
        """`r4` (SELECT 1), and with Flynotes `flynotes` (the start-up licence check) and `sqs`
        (the command loop thread)."""
        if self.engine is None:
            return {}
        checks: dict[str, tuple[bool, str]] = {}
        try:
            connect_check(self.engine)
            checks["r4"] = (True, "reachable")
        except R4Unreachable as exc:
            checks["r4"] = (False, str(exc))
        if self.settings.flynotes_url is None:
            return checks
        if self.startup_error is not None:
            checks["flynotes"] = (False, self.startup_error)
        elif self.licence is None:
            checks["flynotes"] = (False, "the licence has not been checked yet (starting).")
        else:
            checks["flynotes"] = (True, "licence accepted")
        polling = any(t.name == "practice-commands" and t.is_alive() for t in self.threads)
        checks["sqs"] = (
            (True, "polling for commands")
            if polling
            else (False, "the SQS command loop is not running.")
        )
        return checks


def _r4_engine(url: str, mapping: R4Mapping) -> Engine:
    try:
        return create_r4_engine(url, mapping)
    except ImportError as exc:
        raise ValueError(
            f"The R4 database needs a driver that is not installed ({exc.name}); for SQL "
            "Server install the mssql extra: pip install 'pacs-gateway[mssql]'."
        ) from None
