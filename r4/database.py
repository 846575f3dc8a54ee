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
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus

from sqlalchemy import Engine, create_engine

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


def create_r4_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for R4 (or a SQLite stand-in) that never puts patient data in error messages.

    `hide_parameters` keeps bound values (names, birth dates...) out of SQLAlchemy exception
    text, which would otherwise end up in logs and error reports.
    """
    kwargs.setdefault("hide_parameters", True)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)
