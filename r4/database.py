"""Connecting to the R4 database.

In a practice R4 runs on SQL Server 2008, database `sys2000`, on the same machine as the
gateway. Like the connector this replaces, we log in with Windows authentication
(`Trusted_Connection=yes`): the service must run as a Windows user that can read `sys2000`,
and no password is stored anywhere. The ODBC driver name depends on what the practice has
installed ("SQL Server Native Client 11.0" on most R4 servers, "SQL Server" is the one that
ships with Windows, "ODBC Driver 17 for SQL Server" on newer machines), hence a setting.

Example::

    >>> production_url()
    'mssql+pyodbc:///?odbc_connect=DRIVER%3D%7BSQL+Server+Native+Client+11.0%7D%3BSERVER%3D.%3BDATABASE%3Dsys2000%3BTrusted_Connection%3Dyes'

Needs the `mssql` extra (pyodbc) in production; tests use SQLite URLs with `create_r4_engine`.

Invariant: an R4 engine carries its table mapping (`r4.mapping`) in its execution options, so
every read in `r4` takes just the engine and always uses the mapping the engine was made with.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus

from sqlalchemy import Engine, create_engine

from r4.mapping import R4Mapping, R4Tables, build_tables

DEFAULT_DRIVER = "SQL Server Native Client 11.0"
DEFAULT_SERVER = "."
DEFAULT_DATABASE = "sys2000"


def odbc_connection_string(
    driver: str = DEFAULT_DRIVER, server: str = DEFAULT_SERVER, database: str = DEFAULT_DATABASE
) -> str:
    """The raw ODBC connection string: Windows authentication, no user or password."""
    return f"DRIVER={{{driver}}};SERVER={server};DATABASE={database};Trusted_Connection=yes"


def production_url(
    driver: str = DEFAULT_DRIVER, server: str = DEFAULT_SERVER, database: str = DEFAULT_DATABASE
) -> str:
    """SQLAlchemy URL for R4 through pyodbc; the ODBC string is passed whole via `odbc_connect`."""
    return "mssql+pyodbc:///?odbc_connect=" + quote_plus(
        odbc_connection_string(driver, server, database)
    )


_TABLES_OPTION = "r4_tables"


def create_r4_engine(url: str, mapping: R4Mapping | None = None, **kwargs: Any) -> Engine:
    """An engine for R4 (or a SQLite stand-in) reading the tables `mapping` names (default:
    the `sys2000` preset), that never puts patient data in error messages.

    `hide_parameters` keeps bound values (names, birth dates...) out of SQLAlchemy exception
    text, which would otherwise end up in logs and error reports. SQLite has no `dbo` schema:
    there the tables are unqualified.
    """
    kwargs.setdefault("hide_parameters", True)
    kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(url, **kwargs)
    mapping = mapping or R4Mapping()
    schema = None if engine.dialect.name == "sqlite" else mapping.db_schema or None
    return engine.execution_options(**{_TABLES_OPTION: build_tables(mapping, schema=schema)})


def r4_tables(engine: Engine) -> R4Tables:
    """The mapping-built tables of an engine made by `create_r4_engine`."""
    tables = engine.get_execution_options().get(_TABLES_OPTION)
    if tables is None:
        raise TypeError("not an R4 engine: make it with r4.database.create_r4_engine")
    return tables
