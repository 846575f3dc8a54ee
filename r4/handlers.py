"""What each command message does. The rest of the gateway comes in as callables."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine

from r4.flynotes import FlynotesClient
from r4.messages import (
    BulkUploadPatients,
    Command,
    FetchStudies,
    PatientSync,
    QuestionnaireAnswersUpload,
    QuestionnaireQuestionsUpload,
    ReportTest,
    Restart,
)
from r4.patients import questionnaire_answer_texts, questionnaire_question_texts
from r4.sync import DEFAULT_UPLOAD_BATCH_SIZE, bulk_upload_patients, sync_patient

log = logging.getLogger(__name__)

# EX_TEMPFAIL: "try again". The service manager restarts the process on any non-zero exit;
# a distinct code tells an operator reading the service log it was asked for.
RESTART_EXIT_CODE = 75


class RestartRequested(Exception):
    """Raised to end the process so the service manager starts it again (after an update, or
    on a `restart` command). Whoever runs the gateway exits with `exit_code`."""

    def __init__(self, reason: str, exit_code: int = RESTART_EXIT_CODE) -> None:
        super().__init__(reason)
        self.exit_code = exit_code


class Reporter(Protocol):
    """Where errors and diagnostic messages go (Rollbar, through `gateway.practice.reporting`)."""

    def report_message(
        self, message: str, level: str = "error", extra: Mapping[str, Any] | None = None
    ) -> None: ...

    def report_exception(
        self, exc: BaseException | None = None, *, extra: Mapping[str, Any] | None = None
    ) -> None: ...


class LoggingReporter:
    """Fallback reporter: the local log only (ERROR records still reach Rollbar when the
    gateway has installed its logging handler)."""

    def report_message(
        self, message: str, level: str = "error", extra: Mapping[str, Any] | None = None
    ) -> None:
        log.log(logging.getLevelName(level.upper()), "%s %s", message, dict(extra or {}))

    def report_exception(
        self, exc: BaseException | None = None, *, extra: Mapping[str, Any] | None = None
    ) -> None:
        log.error("%s", dict(extra or {}), exc_info=exc or True)


def _raise_restart(reason: str | None) -> None:
    raise RestartRequested(f"restart requested: {reason or 'no reason given'}")


@dataclass
class PracticeCommandHandler:
    """Dispatches one parsed command; raising means "not done, keep the message".

    `create_fetch_job` gets the validated FetchStudies message and creates (or finds, by
    `request_id`) the gateway's fetch job. `restart` by default raises RestartRequested.
    """

    engine: Engine
    flynotes: FlynotesClient
    create_fetch_job: Callable[[FetchStudies], object]
    reporter: Reporter
    restart: Callable[[str | None], None] = _raise_restart
    upload_batch_size: int = DEFAULT_UPLOAD_BATCH_SIZE
    stop: threading.Event | None = None
    # A patient's screen is about to open in Flynotes: the gateway may fetch their studies.
    on_patient_sync: Callable[[int], object] | None = None

    def __call__(self, command: Command) -> None:
        match command:
            case PatientSync(patient_id=patient_id):
                sync_patient(self.engine, self.flynotes, patient_id)
                self._patient_seen(patient_id)
            case BulkUploadPatients():
                bulk_upload_patients(
                    self.engine, self.flynotes, batch_size=self.upload_batch_size, stop=self.stop
                )
            case FetchStudies():
                self.create_fetch_job(command)
            case Restart(reason=reason):
                self.restart(reason)
            case ReportTest(message=text):
                self.reporter.report_message(
                    text[:500], level="info", extra={"source": "test command"}
                )
            case QuestionnaireQuestionsUpload():
                questions = questionnaire_question_texts(self.engine)
                self.reporter.report_message(
                    f"Questionnaire questions for this practice ({len(questions)})",
                    level="info",
                    extra={"questions": questions},
                )
            case QuestionnaireAnswersUpload():
                # Pre-set answers only (the answers table), never the notes patients' answers
                # carry: this list is practice configuration, not patient data.
                answers = questionnaire_answer_texts(self.engine)
                self.reporter.report_message(
                    f"Questionnaire answers for this practice ({len(answers)})",
                    level="info",
                    extra={"answers": answers},
                )

    def _patient_seen(self, patient_id: int) -> None:
        if self.on_patient_sync is None:
            return
        try:
            self.on_patient_sync(patient_id)
        except Exception as exc:
            # The sync is done; the fetch it cued is a convenience, so the message is not
            # kept for it. No patient id in the line.
            log.error("patient-sync: queuing a fetch failed: %s", type(exc).__name__)
