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
from uuid import uuid4

import pytest
import sqlalchemy as sa
from orthanc_server import HOST
from sqlalchemy.exc import OperationalError

from pacs.tls import TlsClient
from testkit.certificates import Certificates, Pair, make_certificates
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


@pytest.fixture(scope="session")
def tls_certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def tls_orthanc(orthanc_factory, tls_certificates: Certificates, gateway_scp_port: int):
    """`tls_orthanc(cert=None)`: an Orthanc whose DICOM port speaks TLS only (with `cert`, or
    the PACS certificate the practice CA signed) and asks every peer for a certificate that
    CA signed; it C-MOVEs to the gateway over TLS."""
    # Imported here: a module-level import would load the plugin before pytest can rewrite
    # its asserts.
    from pytest_orthanc import GATEWAY_AET, GATEWAY_MODALITY

    certs = tls_certificates

    def make(cert: Pair | None = None):
        own = cert or certs.pacs
        return orthanc_factory(
            "TLSPACS",
            {
                GATEWAY_MODALITY: {
                    "AET": GATEWAY_AET,
                    "Host": HOST,
                    "Port": gateway_scp_port,
                    "UseDicomTls": True,
                }
            },
            config_overrides={
                "DicomTlsEnabled": True,
                "DicomTlsCertificate": str(own.cert),
                "DicomTlsPrivateKey": str(own.key),
                "DicomTlsTrustedCertificates": str(certs.ca),
                "DicomTlsRemoteCertificateRequired": True,
            },
            echo_tls=TlsClient(certs.ca, certs.gateway.cert, certs.gateway.key).context(),
            # No C-ECHO gets through an expired certificate: ready when its port is open.
            ready_by_echo=own is not certs.expired,
        )

    return make


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def gateway_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty gateway database: a SQLite file, then a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gateway.db'}"
        return
    server: sa.URL = request.getfixturevalue("postgres_server")
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    name = f"gateway_test_{uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
