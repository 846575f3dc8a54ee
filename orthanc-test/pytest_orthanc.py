"""pytest plugin: a real Orthanc loaded with the demo studies, and fresh ones on demand.

Enable with ``pytest_plugins = ["pytest_orthanc"]`` in tests/conftest.py.

- ``demo_catalog`` (session): the synthetic studies, generated once.
- ``gateway_scp_port`` (session): a free port for the gateway's Storage SCP;
  Orthanc knows it as modality "gateway" with AE title ``GATEWAY_AET``.
- ``orthanc`` (session): the shared server with every demo study loaded.
- ``orthanc_running`` (function): the shared server, restarted first if an
  earlier test stopped or killed it. Use this one in tests that need it up.
- ``orthanc_factory`` (function): makes fresh empty servers that a test may
  stop, kill or corrupt freely; all are killed at teardown.
- ``format_mix`` (session): one small study in every transfer syntax, photometric and
  frame count a PACS must pass through untouched (see demo_studies.generate_format_mix).
- ``dcmqrscp`` (session): DCMTK's dcmqrscp, a second and independent PACS, loaded with
  the format mix and the demo MR study (Explicit VR and RLE); it knows the gateway's AE
  title as a move destination. Killed with its forked children at teardown.
- ``orthanc_with_mix`` (function): the shared Orthanc, with the format mix loaded for the
  test (removed after it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import demo_studies
import pytest
from dcmqrscp_server import DCMQRSCP_BINARY, DcmqrscpServer
from demo_studies import DemoCatalog, DemoStudy
from orthanc_server import HOST, ORTHANC_BINARY, Modality, ModalityEntry, OrthancServer, free_port

GATEWAY_AET = "PACSGATEWAY"
GATEWAY_MODALITY = "gateway"

OrthancFactory = Callable[..., OrthancServer]


def _require_orthanc() -> None:
    # Failing (not skipping) keeps a machine without Orthanc from passing the
    # integration tests by running none of them.
    if not ORTHANC_BINARY.exists():
        pytest.fail(
            f"{ORTHANC_BINARY} is missing: the integration tests need Debian's orthanc "
            "package. Run ./dev test, which installs it.",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def demo_catalog(tmp_path_factory: pytest.TempPathFactory) -> DemoCatalog:
    started = time.perf_counter()
    catalog = demo_studies.generate(tmp_path_factory.mktemp("demo-studies"))
    _report(f"demo studies generated in {time.perf_counter() - started:.1f} s")
    return catalog


@pytest.fixture(scope="session")
def gateway_scp_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def gateway_modality(gateway_scp_port: int) -> Modality:
    return (GATEWAY_AET, HOST, gateway_scp_port)


@pytest.fixture(scope="session")
def orthanc(
    tmp_path_factory: pytest.TempPathFactory,
    demo_catalog: DemoCatalog,
    gateway_modality: Modality,
) -> Iterator[OrthancServer]:
    _require_orthanc()
    server = OrthancServer(
        tmp_path_factory.mktemp("orthanc"),
        modalities={GATEWAY_MODALITY: gateway_modality},
    )
    try:
        server.start()
        started = time.perf_counter()
        demo_studies.store(demo_catalog.files, HOST, server.dicom_port, server.ae_title)
        _report(f"demo studies loaded into Orthanc in {time.perf_counter() - started:.1f} s")
        yield server
    finally:
        server.stop()


@pytest.fixture
def orthanc_running(orthanc: OrthancServer, gateway_modality: Modality) -> OrthancServer:
    if not orthanc.is_running:
        orthanc.start()
    # A test may have unregistered the gateway to provoke "destination unknown".
    if orthanc.modalities.get(GATEWAY_MODALITY) != gateway_modality:
        orthanc.add_modality(GATEWAY_MODALITY, *gateway_modality)
    return orthanc


@pytest.fixture
def orthanc_factory(tmp_path: Path) -> Iterator[OrthancFactory]:
    """``orthanc_factory(ae_title="ORTHANC", modalities=None, start=True, **kwargs)``."""
    _require_orthanc()
    servers: list[OrthancServer] = []

    def make(
        ae_title: str = "ORTHANC",
        modalities: dict[str, ModalityEntry] | None = None,
        *,
        start: bool = True,
        **kwargs: Any,
    ) -> OrthancServer:
        server = OrthancServer(tmp_path / f"orthanc-{len(servers)}", ae_title, modalities, **kwargs)
        servers.append(server)
        if start:
            server.start()
        return server

    yield make
    for server in servers:
        # These servers are thrown away with their data: a kill is instant,
        # where a graceful stop takes Orthanc about 2.5 s.
        server.kill()


MIX_COMPANION_STUDY = "dubois-ext-mr-2024"  # three series, Explicit VR and RLE
# Two series of two classes, all Explicit VR: a study every PACS sends in one clean request.
PLAIN_STUDY = "vanderberg-visit-2019"


@pytest.fixture(scope="session")
def format_mix(tmp_path_factory: pytest.TempPathFactory) -> DemoStudy:
    return demo_studies.generate_format_mix(tmp_path_factory.mktemp("format-mix"))


@pytest.fixture(scope="session")
def dcmqrscp(
    tmp_path_factory: pytest.TempPathFactory,
    demo_catalog: DemoCatalog,
    format_mix: DemoStudy,
    gateway_modality: Modality,
) -> Iterator[DcmqrscpServer]:
    if not DCMQRSCP_BINARY.exists():
        pytest.fail(
            f"{DCMQRSCP_BINARY} is missing: install Debian's dcmtk package (./dev test does).",
            pytrace=False,
        )
    server = DcmqrscpServer(
        tmp_path_factory.mktemp("dcmqrscp"), hosts={GATEWAY_MODALITY: gateway_modality}
    )
    try:
        server.start()
        started = time.perf_counter()
        server.load(
            [
                *format_mix.files,
                *demo_catalog.study(MIX_COMPANION_STUDY).files,
                *demo_catalog.study(PLAIN_STUDY).files,
            ]
        )
        _report(f"studies loaded into dcmqrscp in {time.perf_counter() - started:.1f} s")
        yield server
    finally:
        server.stop()


@pytest.fixture
def orthanc_with_mix(
    orthanc_running: OrthancServer, format_mix: DemoStudy
) -> Iterator[OrthancServer]:
    """The shared Orthanc with the format mix loaded for this test only: other tests count
    what the shared server holds."""
    demo_studies.store(format_mix.files, HOST, orthanc_running.dicom_port, orthanc_running.ae_title)
    yield orthanc_running
    if orthanc_running.is_running:
        orthanc_running.delete_study(format_mix.study_uid)


def _report(message: str) -> None:
    # Shown with -s or in the captured output of a failing test; cheap either way.
    print(f"[pytest_orthanc] {message}")


__all__ = [
    "GATEWAY_AET",
    "GATEWAY_MODALITY",
    "OrthancFactory",
    "dcmqrscp",
    "demo_catalog",
    "format_mix",
    "gateway_modality",
    "gateway_scp_port",
    "orthanc",
    "orthanc_factory",
    "orthanc_running",
    "orthanc_with_mix",
]
