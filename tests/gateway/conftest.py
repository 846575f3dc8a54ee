from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from gateway.service import Gateway
from testkit.gateways import started_gateways


@pytest.fixture
def make_gateway(tmp_path, gateway_scp_port) -> Iterator[Callable[..., Gateway]]:
    """Build and start a Gateway against an Orthanc; stopped at teardown."""
    with started_gateways(tmp_path / "gateway", gateway_scp_port) as start:
        yield start
