"""The subset of the Carestream R4 database (`sys2000`, SQL Server 2008) the gateway reads.

The real R4 table and column names are not documented and we have no installed R4 to look at:
every name below is a plausible guess. They are defined here, and only here, so that fixing
them against a real R4 means editing this one module; every query in `r4` is built from these
`Table` objects. The gateway only ever reads R4 (tests create these tables on SQLite).

Medical history is modelled the way R4 questionnaires work: a practice-defined list of
questions, a list of pre-set answers ('Yes', 'No', 'True', ...), and per-patient answers that
may carry a free-text note. The notes are clinical data; only the pre-set answers are safe to
report anywhere.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

patients = Table(
    "Patients",
    metadata,
    Column("PatientID", Integer, primary_key=True, autoincrement=False),
    Column("ChartNumber", String(20)),
    Column("Title", String(20)),
    Column("FirstName", String(50)),
    Column("MiddleName", String(50)),
    Column("LastName", String(50)),
    Column("PreferredName", String(50)),
    Column("BirthDate", Date),
    # R4 stores sex as a single letter; anything else is read as unknown.
    Column("Sex", String(1)),
    Column("NHSNumber", String(20)),
    Column("AddressLine1", String(100)),
    Column("AddressLine2", String(100)),
    Column("Town", String(50)),
    Column("County", String(50)),
    Column("Postcode", String(10)),
    Column("HomePhone", String(30)),
    Column("WorkPhone", String(30)),
    Column("MobilePhone", String(30)),
    Column("Email", String(100)),
    # Archived / deceased patients are flagged, not deleted, in R4.
    Column("Active", Integer, nullable=False, server_default="1"),
)

questionnaire_questions = Table(
    "MedicalQuestions",
    metadata,
    Column("QuestionID", Integer, primary_key=True, autoincrement=False),
    Column("QuestionText", String(255), nullable=False),
)

questionnaire_answers = Table(
    "MedicalAnswers",
    metadata,
    Column("AnswerID", Integer, primary_key=True, autoincrement=False),
    Column("AnswerText", String(100), nullable=False),
)

medical_history = Table(
    "PatientMedicalHistory",
    metadata,
    Column("HistoryID", Integer, primary_key=True, autoincrement=False),
    Column("PatientID", Integer, ForeignKey("Patients.PatientID"), nullable=False, index=True),
    Column("QuestionID", Integer, ForeignKey("MedicalQuestions.QuestionID"), nullable=False),
    Column("AnswerID", Integer, ForeignKey("MedicalAnswers.AnswerID")),
    Column("Notes", Text),
    Column("RecordedAt", DateTime),
)
