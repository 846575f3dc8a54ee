"""The drills' short forms: bench/drills.py holds the drills, these fixtures give them an env.

tests/ has no packages: put tests/gateway (ServeProcess, gateway_testkit) on sys.path for
`pytest tests/drills` run on its own, as tests/practice/conftest.py does.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
for _folder in ("gateway", "r4"):
    if str(TESTS / _folder) not in sys.path:
        sys.path.insert(0, str(TESTS / _folder))

from bench.drills import DrillEnv  # noqa: E402


@pytest.fixture
def drill_env(tmp_path, orthanc_running, demo_catalog, gateway_scp_port) -> DrillEnv:
    return DrillEnv(orthanc_running, demo_catalog, tmp_path, gateway_scp_port)


@pytest.fixture
def rollbar_recorder():
    from r4_testkit import RollbarRecorder

    recorder = RollbarRecorder()
    recorder.start()
    yield recorder
    recorder.stop()
