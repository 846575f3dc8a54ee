"""Every R4 query, as SQL Server 2008 R2 (10.50) gets it: no construct newer than 2008, valid
T-SQL; and the SQL Server URL loads the FreeTDS ODBC driver and fails with one sentence."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
import sqlglot
from orthanc_server import free_port
from sqlalchemy import func, select
from sqlalchemy.dialects import mssql
from sqlalchemy.sql import ClauseElement

from gateway.core.settings import Settings
from r4.appointments import appointments_query
from r4.check import R4Unreachable, check_r4, connect_check, r4_reads
from r4.database import create_r4_engine
from r4.mapping import R4Mapping, build_tables
from r4.patients import (
    distinct_text_query,
    history_query,
    patient_page_query,
    patient_query,
    search_query,
)
from testkit.sample_data import FULL_TEST_MAPPING

MAPPINGS = {
    "sys2000": R4Mapping(),
    "NG_R4_Sys2000": R4Mapping(preset="NG_R4_Sys2000"),
    "everything mapped": FULL_TEST_MAPPING.model_copy(
        update={"appointment_start": "StartTime", "appointment_cancelled": "Cancelled"}
    ),
}
# Newer than SQL Server 2008: TRIM/CONCAT_WS/STRING_AGG (2017), TRY_CONVERT/CONCAT/IIF/FORMAT/
# OFFSET…FETCH (2012).
NEWER_THAN_2008 = re.compile(
    r"\b(TRIM|TRY_CONVERT|TRY_CAST|TRY_PARSE|CONCAT|CONCAT_WS|IIF|FORMAT|STRING_AGG|"
    r"OFFSET|FETCH|CHOOSE|EOMONTH|DATEFROMPARTS)\b",
    re.IGNORECASE,
)


def _dialect() -> mssql.dialect:
    dialect = mssql.dialect()
    dialect.server_version_info = (10, 50, 4000)
    return dialect


def all_queries(mapping: R4Mapping) -> dict[str, ClauseElement]:
    t = build_tables(mapping, schema=mapping.db_schema)
    queries: dict[str, Any] = {
        "bulk upload page": patient_page_query(t, 500, include_inactive=True),
        "bulk upload next page": patient_page_query(t, 500, 4711, include_inactive=True),
        "matcher index page": patient_page_query(t, 1000, 4711),
        "patient by id": patient_query(t, 4711),
        "medical history": history_query(t, 4711),
        "staff search": search_query(t, "o'brien 4711 1970-02-03 50%_off", 20),
        "questionnaire questions": distinct_text_query(t, "questions"),
        "questionnaire answers": distinct_text_query(t, "answers"),
    }
    if mapping.appointments_mapped:
        queries["appointments"] = appointments_query(t, date(2026, 12, 8), date(2026, 12, 9))
    return {k: q for k, q in queries.items() if q is not None}


def _compiled(query: ClauseElement) -> str:
    return str(query.compile(dialect=_dialect(), compile_kwargs={"literal_binds": True}))


@pytest.mark.parametrize("name", list(MAPPINGS))
def test_every_r4_query_is_sql_server_2008_tsql(name):
    queries = all_queries(MAPPINGS[name])
    assert "staff search" in queries and "bulk upload page" in queries
    if name == "everything mapped":
        assert "medical history" in queries and "questionnaire answers" in queries
    if name != "sys2000":  # classic R4's appointment start column is not known publicly
        assert "appointments" in queries
    for label, query in queries.items():
        sql = _compiled(query)
        newer = NEWER_THAN_2008.findall(sql)
        assert not newer, f"{label} uses {newer}, which SQL Server 2008 lacks:\n{sql}"
        parsed = sqlglot.parse(sql, read="tsql")
        assert len(parsed) == 1 and parsed[0] is not None, label
        if "page" in label or label in ("staff search", "appointments"):
            assert re.search(r"SELECT TOP \d+", sql), f"{label} is not bounded by TOP:\n{sql}"


def test_the_guard_catches_newer_constructs():
    t = build_tables(R4Mapping())
    for newer in (func.trim(t.columns["surname"]), func.concat(t.columns["surname"], "x")):
        assert NEWER_THAN_2008.search(_compiled(select(newer)))
    # Paging past the first page: ROW_NUMBER() for 2008, never OFFSET ... FETCH.
    paged = _compiled(patient_page_query(t, 10).offset(20))
    assert "ROW_NUMBER()" in paged and not NEWER_THAN_2008.search(paged)


def test_staff_search_trims_without_trim():
    mapping = R4Mapping(chart_number="ChartNo")
    sql = _compiled(search_query(build_tables(mapping), "C900", 5))
    assert "ltrim(rtrim(" in sql.lower()


def test_the_checks_reads_are_the_same_queries(tmp_path):
    # `pacs-gateway check` runs each read once, TOP 1: all of them must compile for 2008 too.
    engine = create_r4_engine(f"sqlite:///{tmp_path / 'r4.db'}", FULL_TEST_MAPPING)
    reads = r4_reads(engine, sample_id=1)
    assert {"bulk upload", "patient by id", "staff search", "medical history"} <= set(reads)
    for label, query in reads.items():
        assert not NEWER_THAN_2008.search(_compiled(query)), label


def test_sql_server_url_loads_freetds_and_fails_with_one_sentence():
    port = free_port()
    # As an installer on Linux configures it: [r4] odbc_driver = "FreeTDS", server, database.
    settings = Settings(r4={"odbc_driver": "FreeTDS", "server": f"127.0.0.1,{port}"})
    url = settings.r4_url()
    assert url is not None and url.startswith("mssql+pyodbc://")
    engine = create_r4_engine(url, settings.r4_mapping(), connect_args={"timeout": 5})
    with pytest.raises(R4Unreachable) as failure:
        connect_check(engine)
    # `pacs-gateway check` shows the same sentence as its one R4 line.
    [line] = check_r4(engine)
    assert not line.ok and line.detail == str(failure.value)
    message = str(failure.value)
    assert message.count(". ") <= 1 and message.endswith(".") and "\n" not in message
    assert f"127.0.0.1,{port}" in message and "sys2000" in message
    # FreeTDS itself answered (the driver loaded and tried the server), in plain words.
    assert "Adaptive Server is unavailable" in message, message
    assert "[" not in message and "SQLDriverConnect" not in message, message
    assert "Traceback" not in message
    assert date.today().isoformat() not in message
