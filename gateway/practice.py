"""The practice side inside `serve`: R4, Flynotes, the SQS command loop, schedules, Rollbar.

Everything is off until configured:
- `rollbar_access_token`: errors (and ERROR log records) go to Rollbar, patient data scrubbed;
- an R4 database (`r4_database_url` or `r4_odbc_driver`): fetches may name an R4 patient, whose
  PACS PatientID is derived from their chart number (`ChartNumberResolver`);
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
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import Engine

import jobs
from gateway import reporting
from gateway.fetch_request import FetchRequest
from gateway.matching import IdRule
from gateway.migration_safety import database_revisions
from gateway.settings import Settings
from r4.commands import CommandLoop, LoopSettings
from r4.database import create_r4_engine
from r4.flynotes import FlynotesClient, SqsAccess
from r4.handlers import LoggingReporter, PracticeCommandHandler, Reporter, RestartRequested
from r4.messages import FetchStudies
from r4.patients import get_patient_record
from r4.schedule import Scheduler, Task, licence_check, practice_tasks, run_in_thread
from r4.selfupdate import DIST_NAME, UpdateSource, installed_version
from r4.sync import bulk_upload_patients

if TYPE_CHECKING:
    from gateway.service import Gateway

log = logging.getLogger(__name__)

# Idempotency keys are scoped by API key id; commands from Flynotes share this pseudo id.
FLYNOTES_KEY_ID = "flynotes"
# How long a self-update waits for running fetch jobs to reach a checkpoint and be released.
DRAIN_TIMEOUT = 60.0


def pacs_id_for_chart(rule: IdRule, chart_number: str) -> str:
    """The PACS PatientID the rule expects for this chart number (prefix, padding, suffix).

    Case is kept as R4 has it: C-FIND matches PatientID exactly.
    """
    text = chart_number.strip()
    if rule.pad_width is not None:
        text = text.zfill(rule.pad_width)
    return f"{rule.prefix}{text}{rule.suffix}"


class ChartNumberResolver:
    """`PatientResolver` by id rule: the R4 patient's chart number, formatted as the PACS
    writes it. Demographic matching and the review queue come later (gateway.matching)."""

    def __init__(self, engine: Engine, rule: IdRule) -> None:
        self.engine = engine
        self.rule = rule

    def pacs_patient_ids(self, r4_patient_id: str, pacs_name: str) -> list[str]:
        # Messages are read by whoever asked for the fetch: no patient data, not even the id.
        try:
            record = get_patient_record(self.engine, int(r4_patient_id))
        except ValueError:
            raise jobs.PermanentError("The R4 patient id is not a number.") from None
        except sa.exc.SQLAlchemyError as exc:
            raise jobs.TransientError(
                f"The R4 database could not be read ({type(exc).__name__})."
            ) from None
        if record is None:
            raise jobs.PermanentError("R4 has no patient with this id.")
        if not record.chart_number or not record.chart_number.strip():
            raise jobs.PermanentError(
                "The R4 patient has no chart number, so their PACS id cannot be derived."
            )
        return [pacs_id_for_chart(self.rule, record.chart_number)]


def id_rule(settings: Settings) -> IdRule:
    return IdRule(
        prefix=settings.pacs_id_rule_prefix,
        suffix=settings.pacs_id_rule_suffix,
        pad_width=settings.pacs_id_rule_pad_width,
    )


def _raise_sigterm() -> None:
    # Default for runners other than `serve`: the same graceful path as a service stop.
    signal.raise_signal(signal.SIGTERM)


class PracticeSide:
    """Built by Gateway.__init__; started and stopped with it."""

    def __init__(self, settings: Settings, gateway: Gateway) -> None:
        self.settings = settings
        self.gateway = gateway
        url = settings.r4_url()
        self.engine: Engine | None = _r4_engine(url) if url else None
        self.exit_code: int | None = None  # set once a restart was requested
        # `serve` replaces this with "tell uvicorn to shut down".
        self.request_exit: Callable[[], None] = _raise_sigterm
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._flynotes: FlynotesClient | None = None
        self._log_handler: logging.Handler | None = None
        self._exit_lock = threading.Lock()

    def resolver(self) -> ChartNumberResolver | None:
        if self.engine is None:
            return None
        return ChartNumberResolver(self.engine, id_rule(self.settings))

    @property
    def threads(self) -> list[threading.Thread]:
        return list(self._threads)

    def start(self) -> None:
        self._start_reporting()
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
        scheduler = Scheduler(self._tasks(self._flynotes), reporter=reporter)
        self._threads = [
            run_in_thread("practice-commands", loop.run, self._stop, self._on_restart),
            run_in_thread("practice-schedule", scheduler.run, self._stop, self._on_restart),
        ]
        log.info("practice side started: SQS command loop and schedules")

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
        request = FetchRequest(
            r4_patient_id=str(command.patient_id),
            date_from=command.date_from,
            date_to=command.date_to,
            modalities=list(command.modalities),
        )
        job, created = self.gateway.submit_fetch(
            request, idempotency=command.request_id, api_key_id=FLYNOTES_KEY_ID
        )
        log.info("fetch-studies: job %s (%s)", job.id, "new" if created else "existing")
        return job

    def _sqs_access(self) -> SqsAccess:
        assert self._flynotes is not None
        return self._flynotes.initialise(installed_version(DIST_NAME) or "0").sqs

    def _drain(self) -> None:
        self.gateway.drain(DRAIN_TIMEOUT)

    def _resume_after_failed_update(self, check: Callable[[], None]) -> Callable[[], None]:
        """If the update fails after draining, the old version keeps running: restart the
        workers, or this process would accept fetches and never run them."""

        def run() -> None:
            try:
                check()
            except RestartRequested:
                raise
            except Exception:
                self.gateway.resume()
                raise

        return run

    def _on_restart(self, exc: RestartRequested) -> None:
        with self._exit_lock:
            if self.exit_code is not None:
                return  # the other thread asked first; one exit is enough
            self.exit_code = exc.exit_code
        log.warning("stopping to restart (exit code %d): %s", exc.exit_code, exc)
        self._stop.set()
        self.request_exit()

    # --- reporting ------------------------------------------------------------------------

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
        log.info("errors are reported to Rollbar (%s)", self.settings.rollbar_environment)

    def _stop_reporting(self) -> None:
        if self._log_handler is None:
            return
        logging.getLogger().removeHandler(self._log_handler)
        self._log_handler = None
        reporting.flush()  # reports still queued on rollbar's threads leave before exit

    def _reporter(self) -> Reporter:
        return reporting.RollbarReporter() if self._log_handler else LoggingReporter()


def _r4_engine(url: str) -> Engine:
    try:
        return create_r4_engine(url)
    except ImportError as exc:
        raise ValueError(
            f"The R4 database needs a driver that is not installed ({exc.name}); for SQL "
            "Server install the mssql extra: pip install 'pacs-gateway[mssql]'."
        ) from None
