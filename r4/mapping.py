"""Which R4 tables and columns hold what: a remappable mapping with two evidence-based presets.

Nobody on this project has seen an installed R4; the names come from public notes of other R4
integrations (docs/configuration.md, "R4 database mapping", lists the evidence). An installer
fixes a mismatch in settings (`[r4]` in the TOML file, `PACS_GATEWAY_R4__…`) without a code
change, and `pacs-gateway check` tells them which mapped columns exist.

Invariants:
- Every R4 read in this package is built from the `R4Tables` of a mapping; no table or column
  name is written anywhere else.
- Only `patients_table` and `patient_id` are required. A field set to None (or an empty
  string) is "not known at this practice": it is absent from every query, from the upload and
  from the matcher's index, never an error.
- A column is named either `Column` (on `patients_table`) or `Table.Column`, where `Table` is
  `patients_table` or `person_table` (the second table a newer R4 splits patients into).
- The R4 patient id the API, the review queue and links use is a positive integer. With a text
  key (`patient_id_is_text`, the `NG_R4_Sys2000` preset's `Person.PMSRecordID`) only rows
  whose key is digits (1-9 of them) have an R4 patient id; the others are skipped and counted.

Presets (`preset`): fields left unset take the preset's value.
- `sys2000` (default): classic R4, `dbo.Patients` keyed by the int `PatientCode`.
- `NG_R4_Sys2000`: newer R4, `dbo.Patient` joined to `dbo.Person` on `RecordID` (GUIDs); the
  R4 patient id is `Person.PMSRecordID`, the legacy `PatientCode` as text. Its demographic
  column names are NOT known publicly: the preset's are guesses for `check` to confirm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import (
    Column,
    ColumnElement,
    Date,
    DateTime,
    FromClause,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.types import TypeEngine

Preset = Literal["sys2000", "NG_R4_Sys2000"]

# Logical patient fields, in the order they are read. `patient_id` is required.
PATIENT_FIELDS = (
    "patient_id",
    "chart_number",
    "title",
    "forename",
    "middle_name",
    "surname",
    "preferred_name",
    "birth_date",
    "sex",
    "nhs_number",
    "address_line1",
    "address_line2",
    "town",
    "county",
    "postcode",
    "home_phone",
    "work_phone",
    "mobile_phone",
    "email",
    "active",
)

PRESETS: dict[str, dict[str, Any]] = {
    "sys2000": {
        "patients_table": "Patients",
        "patient_id": "PatientCode",
        "patient_id_is_text": False,
        "chart_number": "PatientCode",
        "title": "Title",
        "forename": "Forename",
        "surname": "Surname",
        "birth_date": "DOB",
        "sex": "Sex",
        "mobile_phone": "MobileNo",
        "email": "Email",
        # R4-FIELD-NOTES: dbo.Appts, PatientCode (nullable). Its start column is not known
        # publicly: no guess; `check` lists the table's date and time columns.
        "appointments_table": "Appts",
        "appointment_patient": "PatientCode",
        "appointment_patient_key": "PatientCode",
    },
    "NG_R4_Sys2000": {
        "patients_table": "Patient",
        "person_table": "Person",
        "patient_join": "RecordID",
        "person_join": "RecordID",
        "patient_id": "Person.PMSRecordID",
        "patient_id_is_text": True,
        # Patient.ChartNumber is often blank on the installs seen; the legacy PatientCode is
        # what the classic R4 (and so the PACS ids) used.
        "chart_number": "Person.PMSRecordID",
        "title": "Person.Title",
        "forename": "Person.FirstName",
        "surname": "Person.LastName",
        "birth_date": "Person.DateOfBirth",
        "sex": "Person.Gender",
        "mobile_phone": "Person.MobilePhone",
        "email": "Person.Email",
        # R4-FIELD-NOTES: dbo.Appointment, PatientID (a GUID: the patient's RecordID).
        "appointments_table": "Appointment",
        "appointment_patient": "PatientID",
        "appointment_patient_key": "RecordID",
        "appointment_start": "ScheduledDate",
    },
}


def _col(description: str) -> Any:
    return Field(None, description=description)


class R4Mapping(BaseModel):
    """Table and column names of the R4 reads. See the module docstring for the rules."""

    preset: Preset = Field(
        "sys2000",
        description="Layout the unset names below default to: `sys2000` (classic R4, "
        "`dbo.Patients` by `PatientCode`) or `NG_R4_Sys2000` (`dbo.Patient` + `dbo.Person`).",
    )
    db_schema: str = Field("dbo", description="SQL Server schema of the R4 tables.")
    patients_table: str = _col("Table of patients (required; preset: `Patients`).")
    person_table: str | None = _col(
        "Second table joined to the patients table (`NG_R4_Sys2000`: `Person`); unset: none."
    )
    patient_join: str | None = _col("Column of the patients table the join matches.")
    person_join: str | None = _col("Column of `person_table` the join matches.")
    patient_id: str = _col(
        "The R4 patient id (required; preset: `PatientCode`): the id the API, review queue "
        "and links use. `Table.Column` names a column of `person_table`."
    )
    patient_id_is_text: bool = _col(
        "The id column is text: only rows whose value is 1-9 digits have an R4 patient id."
    )
    chart_number: str | None = _col(
        "What the id rule (`pacs_id_rule_*`) turns into the PACS PatientID; preset: the id."
    )
    title: str | None = _col("Title (Mr, Mrs...).")
    forename: str | None = _col("Given name.")
    middle_name: str | None = _col("Middle name; unset: not read.")
    surname: str | None = _col("Family name.")
    preferred_name: str | None = _col("Preferred / known-as name; unset: not read.")
    birth_date: str | None = _col("Date of birth (date or datetime).")
    sex: str | None = _col("Sex, one letter (M, F, O; anything else is unknown).")
    nhs_number: str | None = _col("NHS number (an extra id for matching); unset: not read.")
    address_line1: str | None = _col("Address line 1; unset: patients are sent without address.")
    address_line2: str | None = _col("Address line 2.")
    town: str | None = _col("Town.")
    county: str | None = _col("County.")
    postcode: str | None = _col("Postcode.")
    home_phone: str | None = _col("Home phone.")
    work_phone: str | None = _col("Work phone.")
    mobile_phone: str | None = _col("Mobile phone.")
    email: str | None = _col("Email address.")
    active: str | None = _col(
        "Active flag (0 = archived). Unset: every patient counts as active. The bulk upload "
        "sends archived patients too; staff search and the matcher leave them out."
    )
    # Medical history: a practice's questionnaire. Unknown publicly, so off by default.
    questions_table: str | None = _col("Questionnaire questions table; unset: no history.")
    question_id: str | None = _col("Its key column.")
    question_text: str | None = _col("Its question text column.")
    answers_table: str | None = _col("Pre-set answers table ('Yes', 'No'...).")
    answer_id: str | None = _col("Its key column.")
    answer_text: str | None = _col("Its answer text column.")
    history_table: str | None = _col("Per-patient answers table; unset: no medical history.")
    history_id: str | None = _col("Its key column (orders entries of the same time).")
    history_patient: str | None = _col("Its patient column (holds the R4 patient id).")
    history_question: str | None = _col("Its question column.")
    history_answer: str | None = _col("Its pre-set answer column.")
    history_notes: str | None = _col("Its free-text notes column (clinical data).")
    history_recorded_at: str | None = _col("Its date/time column.")

    # Appointments (prefetch): which patients come in when.
    appointments_table: str | None = _col(
        "Appointment book (sys2000 preset: `Appts`; NG: `Appointment`); unset: no prefetch."
    )
    appointment_patient: str | None = _col(
        "Its patient column (sys2000: `PatientCode`; NG: `PatientID`)."
    )
    appointment_patient_key: str | None = _col(
        "The column of `patients_table` that patient column holds (sys2000: `PatientCode`, "
        "the R4 patient id; NG: `RecordID`)."
    )
    appointment_start: str | None = _col(
        "When the appointment starts, a date or datetime column (NG: `ScheduledDate`; "
        "sys2000: not known publicly, `check` lists the table's date and time columns)."
    )
    appointment_cancelled: str | None = _col(
        "Non-zero for a cancelled appointment; unset: none counts as cancelled."
    )

    @property
    def appointments_mapped(self) -> bool:
        """Whether appointments can be read: table, patient, key and start all named."""
        return bool(
            self.appointments_table
            and self.appointment_patient
            and self.appointment_patient_key
            and self.appointment_start
        )

    @model_validator(mode="before")
    @classmethod
    def _preset_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        preset = data.get("preset") or "sys2000"
        if preset not in PRESETS:
            return data  # the Literal check reports it
        merged = dict(PRESETS[preset])
        merged.update(data)  # a key given as None or "" is unmapped, not "the preset's"
        merged.setdefault("patient_id_is_text", False)
        # "" in the TOML or environment means "not at this practice".
        return {k: (None if v == "" else v) for k, v in merged.items()}

    @model_validator(mode="after")
    def _consistent(self) -> R4Mapping:
        if not self.patients_table or not self.patient_id:
            raise ValueError("the R4 mapping needs patients_table and patient_id")
        if self.person_table and not (self.patient_join and self.person_join):
            raise ValueError("person_table needs patient_join and person_join")
        tables = {self.patients_table, self.person_table}
        for name in PATIENT_FIELDS:
            spec = getattr(self, name)
            if spec and "." in spec and spec.split(".", 1)[0] not in tables:
                raise ValueError(
                    f"r4 {name} = {spec!r} names a table that is neither patients_table "
                    f"({self.patients_table}) nor person_table ({self.person_table})"
                )
        if self.history_table:
            needed = ("questions_table", "question_id", "question_text", "history_patient")
            needed += ("history_question",)
            missing = [n for n in needed if not getattr(self, n)]
            if missing:
                raise ValueError(f"history_table needs {', '.join(missing)} too")
        return self

    def patient_columns(self) -> dict[str, tuple[str, str]]:
        """Mapped logical field -> (table, column), unmapped fields left out."""
        found: dict[str, tuple[str, str]] = {}
        for name in PATIENT_FIELDS:
            spec = getattr(self, name)
            if not spec:
                continue
            table, _, column = spec.rpartition(".")
            found[name] = (table or self.patients_table, column)
        return found

    def mapped_columns(self) -> dict[str, list[tuple[str, str]]]:
        """Every table the reads touch -> its (logical name, column) pairs, for `check`."""
        tables: dict[str, list[tuple[str, str]]] = {self.patients_table: []}
        if self.person_table:
            tables[self.person_table] = []
            tables[self.patients_table].append(("patient_join", self.patient_join or ""))
            tables[self.person_table].append(("person_join", self.person_join or ""))
        for name, (table, column) in self.patient_columns().items():
            tables[table].append((name, column))
        if self.history_table:
            for table, fields in (
                (self.questions_table, ("question_id", "question_text")),
                (self.answers_table, ("answer_id", "answer_text")),
                (
                    self.history_table,
                    (
                        "history_id",
                        "history_patient",
                        "history_question",
                        "history_answer",
                        "history_notes",
                        "history_recorded_at",
                    ),
                ),
            ):
                if not table:
                    continue
                cols = tables.setdefault(table, [])
                cols += [(f, getattr(self, f)) for f in fields if getattr(self, f)]
        return tables


_TYPES: dict[str, TypeEngine[Any]] = {
    "birth_date": Date(),
    "active": Integer(),
    "history_recorded_at": DateTime(),
    "history_notes": Text(),
}


@dataclass(frozen=True)
class R4Tables:
    """SQLAlchemy Core objects built from a mapping. `source` is what patient reads select
    from (one table, or the patients table joined to the person table); `columns` holds the
    mapped patient columns by logical name."""

    mapping: R4Mapping
    source: FromClause
    patients: Table
    columns: dict[str, Column[Any]]
    history: Table | None
    questions: Table | None
    answers: Table | None
    history_columns: dict[str, Column[Any]]

    @property
    def patient_id(self) -> Column[Any]:
        return self.columns["patient_id"]

    def id_text(self) -> ColumnElement[Any]:
        """The id column as SQL Server 2008 compares text: padding trimmed (no TRIM there)."""
        return func.ltrim(func.rtrim(self.patient_id))

    def id_equals(self, patient_id: int) -> ColumnElement[bool]:
        if self.mapping.patient_id_is_text:
            return self.id_text() == str(patient_id)
        return self.patient_id == patient_id


def build_tables(mapping: R4Mapping, *, schema: str | None = "dbo") -> R4Tables:
    """Table objects for `mapping` in `schema` (None on SQLite, which has no `dbo`)."""
    metadata = MetaData(schema=schema)
    wanted: dict[str, dict[str, TypeEngine[Any]]] = {}
    for name, (table, column) in mapping.patient_columns().items():
        kind: TypeEngine[Any] = _TYPES.get(name, String())
        if name == "patient_id" and not mapping.patient_id_is_text:
            kind = Integer()
        # The first field naming a column types it (the id comes first: chart number may share it).
        wanted.setdefault(table, {}).setdefault(column, kind)
    if mapping.person_table:
        assert mapping.patient_join and mapping.person_join
        wanted.setdefault(mapping.patients_table, {}).setdefault(mapping.patient_join, String())
        wanted.setdefault(mapping.person_table, {}).setdefault(mapping.person_join, String())
    wanted.setdefault(mapping.patients_table, {})
    tables = {
        name: Table(name, metadata, *(Column(c, t) for c, t in cols.items()))
        for name, cols in wanted.items()
    }
    patients = tables[mapping.patients_table]
    source: FromClause = patients
    if mapping.person_table:
        person = tables[mapping.person_table]
        source = patients.join(
            person, patients.c[mapping.patient_join] == person.c[mapping.person_join]
        )
    columns = {
        name: tables[table].c[column] for name, (table, column) in mapping.patient_columns().items()
    }
    history = questions = answers = None
    history_columns: dict[str, Column[Any]] = {}
    if mapping.history_table:
        questions = _table(
            metadata, mapping.questions_table, [mapping.question_id, mapping.question_text]
        )
        if mapping.answers_table and mapping.answer_id and mapping.answer_text:
            answers = _table(
                metadata, mapping.answers_table, [mapping.answer_id, mapping.answer_text]
            )
        fields = (
            "history_id",
            "history_patient",
            "history_question",
            "history_answer",
            "history_notes",
            "history_recorded_at",
        )
        history = Table(
            mapping.history_table,
            metadata,
            *(
                Column(getattr(mapping, f), _TYPES.get(f, String()))
                for f in fields
                if getattr(mapping, f)
            ),
        )
        history_columns = {f: history.c[getattr(mapping, f)] for f in fields if getattr(mapping, f)}
    return R4Tables(
        mapping=mapping,
        source=source,
        patients=patients,
        columns=columns,
        history=history,
        questions=questions,
        answers=answers,
        history_columns=history_columns,
    )


def _table(metadata: MetaData, name: str | None, columns: list[str | None]) -> Table:
    assert name is not None
    return Table(name, metadata, *(Column(c, String()) for c in columns if c))
