"""Gateways wired to a demo R4 (orthanc-test/demo_practice.py) and the test Orthanc.

tests/ has no packages: the helpers of tests/gateway are plain modules, on sys.path only when
pytest collects that folder. Put them there for `pytest tests/wiring`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS / "gateway") not in sys.path:
    sys.path.insert(0, str(TESTS / "gateway"))

from demo_practice import write_demo_practice  # noqa: E402

from gateway.service import Gateway  # noqa: E402
from testkit.gateways import started_gateways  # noqa: E402

# The demo PACS files the practice's patients as "R4-" + chart number.
ID_RULE = {"pacs_id_rule_prefix": "R4-"}


@pytest.fixture
def demo_r4_url(tmp_path: Path) -> str:
    return write_demo_practice(tmp_path / "sys2000.db")


@pytest.fixture
def wired_gateway(tmp_path: Path, gateway_scp_port: int) -> Iterator[Callable[..., Gateway]]:
    """`wired_gateway(orthanc, r4_url=None, workers=1, **settings)`: a started Gateway (with
    R4 when `r4_url` is given, the id rule "R4-" + chart number); stopped at teardown."""
    with started_gateways(tmp_path / "gateway", gateway_scp_port) as start:

        def make(orthanc, r4_url: str | None = None, workers: int = 1, **overrides) -> Gateway:
            values = {**ID_RULE, **overrides}
            if r4_url is not None:
                values["r4_database_url"] = r4_url
            return start(orthanc, workers=workers, **values)

        yield make
