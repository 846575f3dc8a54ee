"""The practice-side command messages Flynotes puts on the practice's SQS queue.

Each message body is a JSON object with a `type`; the other fields depend on the type (see
docs/flynotes-api.md). Unknown extra fields are ignored so Flynotes can add fields before every
practice has updated. Identifiers accept the camelCase spelling the earlier Node connector used.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class PatientSync(_Message):
    type: Literal["patient-sync"]
    patient_id: int = Field(validation_alias=AliasChoices("patient_id", "patientId"))


class BulkUploadPatients(_Message):
    type: Literal["bulk-upload-patients"]


class FetchStudies(_Message):
    type: Literal["fetch-studies"]
    patient_id: int = Field(validation_alias=AliasChoices("patient_id", "patientId"))
    date_from: date | None = Field(None, validation_alias=AliasChoices("date_from", "dateFrom"))
    date_to: date | None = Field(None, validation_alias=AliasChoices("date_to", "dateTo"))
    # Short codes (CT, PX): anything else, a wildcard included, refuses the whole message.
    modalities: tuple[Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,16}$")], ...] = ()
    # Flynotes' id for this request, handed to the job as its idempotency key.
    request_id: str | None = Field(None, validation_alias=AliasChoices("request_id", "requestId"))


class Restart(_Message):
    type: Literal["restart"]
    reason: str | None = None


class ReportTest(_Message):
    type: Literal["test"]
    message: str = "Test message from the practice gateway"


class QuestionnaireQuestionsUpload(_Message):
    type: Literal["questionnaire-questions-upload"]


class QuestionnaireAnswersUpload(_Message):
    type: Literal["questionnaire-answers-upload"]


Command = Annotated[
    PatientSync
    | BulkUploadPatients
    | FetchStudies
    | Restart
    | ReportTest
    | QuestionnaireQuestionsUpload
    | QuestionnaireAnswersUpload,
    Field(discriminator="type"),
]

_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)
MESSAGE_TYPES = frozenset(
    (
        "patient-sync",
        "bulk-upload-patients",
        "fetch-studies",
        "restart",
        "test",
        "questionnaire-questions-upload",
        "questionnaire-answers-upload",
    )
)


class MalformedMessage(ValueError):
    """The body is not a valid command. The text names the problem, never the body's values."""


class UnknownMessageType(MalformedMessage):
    def __init__(self, message_type: str) -> None:
        super().__init__(f"unknown message type {message_type[:60]!r}")
        self.message_type = message_type


def _describe(error: ValidationError) -> str:
    # Field locations and error kinds only: pydantic's default text quotes the input values.
    parts = [
        ".".join(str(p) for p in e["loc"]) + f": {e['type']}"
        for e in error.errors(include_url=False, include_input=False, include_context=False)
    ]
    return "invalid fields: " + "; ".join(parts[:10])


def parse_command(body: str | bytes) -> Command:
    """Parse and validate one message body; raises MalformedMessage or UnknownMessageType."""
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MalformedMessage("body is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedMessage("body is not a JSON object")
    message_type = data.get("type")
    if not isinstance(message_type, str):
        raise MalformedMessage("body has no string 'type'")
    if message_type not in MESSAGE_TYPES:
        raise UnknownMessageType(message_type)
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise MalformedMessage(f"{message_type}: {_describe(exc)}") from None
