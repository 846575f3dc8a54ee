from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from gateway_testkit import gateway_settings

from gateway.service import Gateway


@pytest.fixture
def make_gateway(tmp_path, gateway_scp_port) -> Iterator[Callable[..., Gateway]]:
    """Build and start a Gateway against an Orthanc; stopped at teardown."""
    started: list[Gateway] = []

    def make(orthanc, workers: int = 1, **overrides) -> Gateway:
        settings = gateway_settings(tmp_path / "gateway", gateway_scp_port, orthanc, **overrides)
        gateway = Gateway(settings)
        gateway.start(workers=workers)
        started.append(gateway)
        return gateway

    yield make
    for gateway in started:
        gateway.stop(timeout=5)
