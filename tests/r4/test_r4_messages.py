from __future__ import annotations

from datetime import date

import pytest

from r4.messages import (
    BulkUploadPatients,
    FetchStudies,
    MalformedMessage,
    PatientSync,
    QuestionnaireAnswersUpload,
    QuestionnaireQuestionsUpload,
    ReportTest,
    Restart,
    UnknownMessageType,
    parse_command,
)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            '{"type": "patient-sync", "patientId": 42}',
            PatientSync(type="patient-sync", patient_id=42),
        ),
        (
            '{"type": "patient-sync", "patient_id": "42", "extra": 1}',
            PatientSync(type="patient-sync", patient_id=42),
        ),
        ('{"type": "bulk-upload-patients"}', BulkUploadPatients(type="bulk-upload-patients")),
        ('{"type": "restart", "reason": "deploy"}', Restart(type="restart", reason="deploy")),
        ('{"type": "test"}', ReportTest(type="test")),
        (
            '{"type": "questionnaire-questions-upload"}',
            QuestionnaireQuestionsUpload(type="questionnaire-questions-upload"),
        ),
        (
            '{"type": "questionnaire-answers-upload"}',
            QuestionnaireAnswersUpload(type="questionnaire-answers-upload"),
        ),
    ],
)
def test_parses_every_type(body, expected):
    assert parse_command(body) == expected


def test_fetch_studies_fields():
    command = parse_command(
        '{"type": "fetch-studies", "patientId": 7, "dateFrom": "2020-01-01", '
        '"date_to": "2021-12-31", "modalities": ["CR", "PX"], "requestId": "abc"}'
    )
    assert command == FetchStudies(
        type="fetch-studies",
        patient_id=7,
        date_from=date(2020, 1, 1),
        date_to=date(2021, 12, 31),
        modalities=("CR", "PX"),
        request_id="abc",
    )


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1, 2]",
        '{"no": "type"}',
        '{"type": 5}',
        b"\xff\xfe",
        '{"type": "patient-sync"}',
        '{"type": "patient-sync", "patientId": "Smith"}',
        '{"type": "fetch-studies", "patientId": 1, "dateFrom": "14/07/1961"}',
        '{"type": "fetch-studies", "patientId": "*"}',
        '{"type": "fetch-studies", "patientId": "100?"}',
        '{"type": "fetch-studies", "patientId": 1, "modalities": ["C*"]}',
    ],
)
def test_malformed_messages_are_rejected_without_quoting_values(body):
    with pytest.raises(MalformedMessage) as info:
        parse_command(body)
    assert "Smith" not in str(info.value) and "1961" not in str(info.value)


def test_unknown_type():
    with pytest.raises(UnknownMessageType) as info:
        parse_command('{"type": "format-disk"}')
    assert info.value.message_type == "format-disk"
