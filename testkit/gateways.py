"""Gateways for tests: over a closed PACS (settings on free loopback ports, one PACS that
nothing listens for: a C-ECHO or C-FIND fails at once, as with a PACS switched off), and
started against a test Orthanc, stopped when the test ends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from orthanc_server import free_port

from gateway.core.settings import PacsSettings, Settings
from gateway.service import Gateway


def closed_pacs_settings(
    data_dir: Path, *, pacs_name: str = "main", connect_timeout: float = 1.0, **extra: Any
) -> Settings:
    """Settings with no job workers (jobs stay where the test puts them) and one PACS that
    nothing listens for; `extra` sets any other setting (R4, id rule, ...)."""
    return Settings(
        data_dir=data_dir,
        dicom_port=free_port(),
        dicom_bind="127.0.0.1",
        workers=0,
        pacs=[
            PacsSettings(
                name=pacs_name,
                ae_title="NOBODY",
                host="127.0.0.1",
                port=free_port(),  # closed: nothing listens there
                connect_timeout=connect_timeout,
            )
        ],
        # Tests run on machines with any amount of free disk: the floor is tested on its own.
        **{"storage_min_free_gb": 0.0, **extra},
    )


@contextmanager
def started_gateways(data_dir: Path, scp_port: int) -> Iterator[Callable[..., Gateway]]:
    """`start(orthanc, workers=1, **settings)` builds and starts a Gateway against an Orthanc
    (settings: `gateway_settings`, tests/gateway); every one started is stopped on exit."""
    from gateway_testkit import gateway_settings  # tests/gateway: on sys.path under pytest

    started: list[Gateway] = []

    def start(orthanc: Any, workers: int = 1, **overrides: Any) -> Gateway:
        settings = gateway_settings(data_dir, scp_port, orthanc, **overrides)
        gateway = Gateway(settings)
        gateway.start(workers=workers)
        started.append(gateway)
        return gateway

    try:
        yield start
    finally:
        for gateway in started:
            gateway.stop(timeout=5)
