"""The R4 half of `pacs-gateway check`: R4 reachable, the mapping matching it, every read running.

Invariants:
- Read-only, and never prints patient data: lines name tables, columns and counts only. A read
  runs with TOP 1 and only its success is reported.
- One `CheckResult` per check; a failure's detail is one sentence saying what to change.
- Columns are looked up in INFORMATION_SCHEMA.COLUMNS on SQL Server (case-insensitively, as
  R4's default collation compares), through SQLAlchemy's inspector elsewhere (SQLite in tests).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any
from urllib.parse import unquote_plus

from rapidfuzz import fuzz, process
from sqlalchemy import Engine, func, inspect, select, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.sql import ClauseElement

from r4.appointments import appointments_between, next_working_day
from r4.database import r4_tables
from r4.mapping import R4Tables
from r4.patients import (
    distinct_text_query,
    history_query,
    patient_id_of,
    patient_page_query,
    patient_query,
    search_query,
)

# Names other integrations or schemas use for the same thing: better suggestions than spelling
# alone (FirstName for Forename).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "patient_id": ("PatientCode", "PatientID", "PMSRecordID", "RecordID"),
    "chart_number": ("ChartNumber", "ChartNo", "PatientCode"),
    "forename": ("Forename", "FirstName", "GivenName"),
    "surname": ("Surname", "LastName", "FamilyName"),
    "middle_name": ("MiddleName", "MiddleNames"),
    "preferred_name": ("PreferredName", "KnownAs"),
    "birth_date": ("DOB", "DateOfBirth", "BirthDate"),
    "sex": ("Sex", "Gender"),
    "title": ("Title",),
    "mobile_phone": ("MobileNo", "Mobile", "MobilePhone"),
    "home_phone": ("HomeTel", "HomePhone", "Telephone"),
    "work_phone": ("WorkTel", "WorkPhone"),
    "email": ("Email", "EmailAddress", "EMail"),
    "nhs_number": ("NHSNumber", "NHSNo"),
    "address_line1": ("Address1", "AddressLine1", "Street"),
    "postcode": ("Postcode", "PostCode", "Zip"),
    "active": ("Active", "Archived", "IsActive", "Current"),
}


REQUIRED = frozenset({"patient_id", "patient_join", "person_join"})


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.name}: {self.detail}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class R4Unreachable(RuntimeError):
    """R4 could not be connected to; the message is one sentence naming server and database."""


def describe_target(engine: Engine) -> str:
    """'database sys2000 on server .' from the engine's URL (no credentials)."""
    url = engine.url
    server, database = url.host, url.database
    odbc = url.query.get("odbc_connect")
    if isinstance(odbc, str):
        parts = dict(
            p.split("=", 1) for p in unquote_plus(odbc).split(";") if "=" in p
        )  # DRIVER={...};SERVER=.;DATABASE=sys2000
        lowered = {k.strip().lower(): v.strip() for k, v in parts.items()}
        server, database = lowered.get("server"), lowered.get("database")
    if url.get_backend_name() == "sqlite":
        return f"SQLite file {database or ':memory:'}"
    return f"database {database or '(default)'} on server {server or '(default)'}"


def _reason(exc: BaseException) -> str:
    """The driver's own words, without SQLAlchemy's statement dump (no data: hide_parameters)."""
    orig = getattr(exc, "orig", None) or exc
    args = getattr(orig, "args", ())
    # pyodbc: (sqlstate, "[08S01] [FreeTDS][SQL Server]Unable to connect: ... (20009) (...)")
    raw = args[1] if len(args) == 2 and isinstance(args[1], str) else str(orig)
    words = raw.splitlines()[0] if raw else type(orig).__name__
    words = re.sub(r"\[[^\]]*\]\s*", "", words)
    words = re.sub(r"(\s*\(\w+\))+\s*$", "", words)
    words = re.sub(r"\s+", " ", words).strip()
    return words[:240].rstrip(".") or type(orig).__name__


def connect_check(engine: Engine) -> None:
    """`SELECT 1` on R4, or R4Unreachable with one sentence naming server and database."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1")).scalar_one()
    except (SQLAlchemyError, OSError) as exc:
        raise R4Unreachable(
            f"Could not connect to the R4 {describe_target(engine)} ({_reason(exc)}); check "
            "that SQL Server is running there and this account may read it, then retry."
        ) from None


def _table_columns(engine: Engine, schema: str | None, table: str) -> list[str] | None:
    """The table's real column names, or None when it does not exist."""
    found = _table_types(engine, schema, table)
    return None if found is None else list(found)


def _table_names(engine: Engine, schema: str | None) -> list[str]:
    if engine.dialect.name == "mssql":
        query = text("SELECT TABLE_NAME FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = :s")
        with engine.connect() as conn:
            return list(conn.execute(query, {"s": schema or "dbo"}).scalars())
    return inspect(engine).get_table_names(schema=schema)


def suggest(wanted: str, candidates: list[str], field: str = "", limit: int = 3) -> list[str]:
    """Real names most like `wanted` (or a usual name for `field`), best first."""
    if not candidates:
        return []
    targets = [wanted, *SYNONYMS.get(field, ())]
    scores: dict[str, float] = {}
    for target in targets:
        for name, score, _ in process.extract(
            target.lower(), [c.lower() for c in candidates], scorer=fuzz.WRatio, limit=limit
        ):
            original = next(c for c in candidates if c.lower() == name)
            scores[original] = max(scores.get(original, 0), score)
    ranked = sorted(scores, key=lambda n: -scores[n])
    return [n for n in ranked if scores[n] >= 75][:limit]


def r4_reads(engine: Engine, sample_id: int) -> dict[str, ClauseElement]:
    """Every read the gateway makes of R4, each bounded to one row (TOP 1)."""
    t = r4_tables(engine)
    reads: dict[str, Any] = {
        "bulk upload": patient_page_query(t, 1, include_inactive=True),
        "matcher index": patient_page_query(t, 1),
        "patient by id": patient_query(t, sample_id).limit(1),
        "staff search": search_query(t, "a", 1),
    }
    history = history_query(t, sample_id)
    if history is not None:
        reads["medical history"] = history.limit(1)
    for which in ("questions", "answers"):
        query = distinct_text_query(t, which, limit=1)
        if query is not None:
            reads[f"questionnaire {which}"] = query
    return reads


def check_r4(engine: Engine) -> list[CheckResult]:
    """Connectivity, the mapped tables and columns, the patient count, every read once."""
    results: list[CheckResult] = []
    t: R4Tables = r4_tables(engine)
    m = t.mapping
    try:
        connect_check(engine)
    except R4Unreachable as exc:
        return [CheckResult("r4 connect", False, str(exc))]
    results.append(CheckResult("r4 connect", True, describe_target(engine)))
    schema = t.patients.schema
    shape_ok = True
    for table, fields in m.mapped_columns().items():
        where = f"{schema}.{table}" if schema else table
        try:
            real = _table_columns(engine, schema, table)
        except SQLAlchemyError as exc:
            results.append(CheckResult(f"r4 table {table}", False, f"{_reason(exc)}."))
            shape_ok = False
            continue
        if real is None:
            like = suggest(table, _table_names(engine, schema))
            hint = f"; tables like it: {', '.join(like)}" if like else ""
            results.append(
                CheckResult(
                    f"r4 table {table}",
                    False,
                    f"{where} is missing{hint}. Set the right name in [r4] (see "
                    "docs/configuration.md).",
                )
            )
            shape_ok = False
            continue
        count = f"{len(real)} column{'s' if len(real) != 1 else ''}"
        results.append(CheckResult(f"r4 table {table}", True, f"{where}: {count}"))
        by_lower = {c.lower(): c for c in real}
        for field, column in fields:
            name = f"r4 column {field}"
            found = by_lower.get(column.lower())
            if found is not None:
                results.append(CheckResult(name, True, f"{table}.{found}"))
                continue
            shape_ok = False
            like = suggest(column, real, field)
            hint = f" Columns like it: {', '.join(like)}." if like else ""
            unset = "" if field in REQUIRED else ', or to "" if this R4 has none'
            results.append(
                CheckResult(
                    name,
                    False,
                    f"{table}.{column} is missing.{hint} Set [r4] {field} to the right "
                    f"column{unset}.",
                )
            )
    if not shape_ok:
        results.append(
            CheckResult("r4 reads", False, "not run: fix the mapping above first, then re-run.")
        )
        return results
    results += _counts_and_reads(engine, t)
    results.append(appointments_check(engine, t))
    return results


def appointments_check(engine: Engine, t: R4Tables, today: date | None = None) -> CheckResult:
    """Whether the appointment book can be read, and how many patients come in on the next
    working day. Never a failure: the book is only needed for prefetch."""
    m = t.mapping
    name = "r4 appointments"
    if not m.appointments_table:
        return CheckResult(name, True, "not mapped: prefetch cannot see who comes in.")
    schema = t.patients.schema
    try:
        real = _table_types(engine, schema, m.appointments_table)
    except SQLAlchemyError as exc:
        return CheckResult(name, True, f"{m.appointments_table} cannot be read: {_reason(exc)}.")
    if real is None:
        return CheckResult(
            name, True, f"{m.appointments_table} is missing: set appointments_table in [r4]."
        )
    if not m.appointments_mapped:
        dated = [c for c, kind in real.items() if "date" in kind or "time" in kind]
        return CheckResult(
            name,
            True,
            f"{m.appointments_table} found; set appointment_start to its start column, one "
            f"of: {', '.join(dated) or 'none of its columns is a date or time'}.",
        )
    day = next_working_day(today or date.today())
    try:
        found = appointments_between(engine, day, day)
    except SQLAlchemyError as exc:
        return CheckResult(name, False, f"reading them failed: {_reason(exc)}.")
    return CheckResult(
        name, True, f"{len(found)} patients with appointments on {day:%a} {day.day} {day:%b}"
    )


def _table_types(engine: Engine, schema: str | None, table: str) -> dict[str, str] | None:
    """The table's columns and their type names (lower case), or None when it is missing."""
    if engine.dialect.name == "mssql":
        query = text(
            "SELECT COLUMN_NAME, DATA_TYPE FROM INFORMATION_SCHEMA.COLUMNS "
            "WHERE TABLE_SCHEMA = :schema AND TABLE_NAME = :table ORDER BY ORDINAL_POSITION"
        )
        with engine.connect() as conn:
            rows = conn.execute(query, {"schema": schema or "dbo", "table": table}).all()
        return {str(c): str(k).lower() for c, k in rows} or None
    inspector = inspect(engine)
    if not inspector.has_table(table, schema=schema):
        return None
    return {c["name"]: str(c["type"]).lower() for c in inspector.get_columns(table, schema=schema)}


def _counts_and_reads(engine: Engine, t: R4Tables) -> list[CheckResult]:
    results: list[CheckResult] = []
    sample_id = 1
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(func.count()).select_from(t.source)).scalar_one()
            detail = f"{rows} rows"
            if t.mapping.patient_id_is_text:
                ids = conn.execute(select(t.patient_id).select_from(t.source)).scalars()
                usable = [i for i in map(patient_id_of, ids) if i is not None]
                detail += (
                    f", {len(usable)} with an R4 patient id (digits in {t.mapping.patient_id})"
                )
                sample_id = min(usable, default=1)
            else:
                first = conn.execute(patient_page_query(t, 1, include_inactive=True)).first()
                sample_id = patient_id_of(first._mapping["patient_id"]) if first else 1
                sample_id = sample_id or 1
            if "active" in t.columns:
                active = conn.execute(
                    select(func.count()).select_from(t.source).where(t.columns["active"] != 0)
                ).scalar_one()
                detail += f", {active} active"
        results.append(CheckResult("r4 patients", rows > 0, detail if rows else "no patients."))
    except SQLAlchemyError as exc:
        results.append(CheckResult("r4 patients", False, f"counting failed: {_reason(exc)}."))
    for label, query in r4_reads(engine, sample_id).items():
        results.append(_run_read(engine, f"r4 read {label}", query))
    return results


def _run_read(engine: Engine, name: str, query: ClauseElement) -> CheckResult:
    try:
        with engine.connect() as conn:
            count = len(conn.execute(query).fetchmany(1))  # type: ignore[call-overload]
    except DBAPIError as exc:
        return CheckResult(name, False, f"{_reason(exc)}.")
    except SQLAlchemyError as exc:
        return CheckResult(name, False, f"{type(exc).__name__}: {_reason(exc)}.")
    return CheckResult(name, True, f"ran ({count} row)")


def run_checks(checks: list[Callable[[], list[CheckResult]]]) -> list[CheckResult]:
    """Run check groups in order; a group that raises becomes one failed line."""
    results: list[CheckResult] = []
    for check in checks:
        try:
            results += check()
        except Exception as exc:  # one broken check must not hide the others
            results.append(CheckResult(getattr(check, "__name__", "check"), False, _reason(exc)))
    return results
