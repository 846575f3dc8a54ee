"""Fixtures shared by every test: the real Orthanc (pytest_orthanc) and the PostgreSQL server.

PostgreSQL: `./dev test` starts a throwaway cluster on a free port and exports its URL as
GATEWAY_TEST_POSTGRES_URL (not PACS_GATEWAY_*: serve warns about unknown variables with its
prefix). A test that needs PostgreSQL and cannot reach it skips on a
developer's machine but FAILS when CI is set, so a CI run never passes with those tests silently
left out."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from testkit.small_disk import CannotMount, small_disk

pytest_plugins = ["pytest_orthanc"]

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_admin_url() -> sa.URL:
    """The server the PostgreSQL tests create their databases on, as a database URL."""
    raw = (
        os.environ.get("GATEWAY_TEST_POSTGRES_URL")
        or os.environ.get("JOBS_TEST_POSTGRES_URL")
        or DEFAULT_POSTGRES_URL
    )
    return sa.make_url(raw)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def postgres_server() -> sa.URL:
    """The admin URL of a reachable PostgreSQL server; skip without one, fail under CI."""
    url = postgres_admin_url()
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        engine.connect().close()
    except OperationalError as exc:
        shown = url.render_as_string(hide_password=True)
        reason = f"PostgreSQL not reachable at {shown} ({type(exc.orig).__name__})"
        if in_ci():
            pytest.fail(f"{reason}; CI must run the PostgreSQL tests: run them with ./dev test.")
        pytest.skip(f"{reason}; ./dev test starts one.")
    finally:
        engine.dispose()
    return url


@pytest.fixture
def small_disks(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """`small_disks(size)`: a real tmpfs of `size` bytes, unmounted at teardown. Skips where
    mounting is not allowed; FAILS under CI, which runs as root."""
    with ExitStack() as stack:

        def make(size: int) -> Path:
            try:
                return stack.enter_context(small_disk(tmp_path / f"disk-{size}", size))
            except CannotMount as exc:
                if in_ci():
                    pytest.fail(f"CI runs as root and must be able to mount a tmpfs: {exc}")
                pytest.skip(f"mounting a tmpfs needs root: {exc}")

        yield make
