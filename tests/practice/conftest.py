"""Fixtures for the practice side inside `serve`: SQLite R4, fake Flynotes, moto SQS, Rollbar.

tests/ has no packages: the helpers of tests/gateway and tests/r4 are plain modules, on
sys.path only when pytest collects those folders. Put them there for `pytest tests/practice`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
for _folder in ("gateway", "r4"):
    if str(TESTS / _folder) not in sys.path:
        sys.path.insert(0, str(TESTS / _folder))

from r4_testkit import RollbarRecorder, running_moto  # noqa: E402


@pytest.fixture(scope="session")
def practice_moto_endpoint() -> Iterator[str]:
    with running_moto() as endpoint:
        yield endpoint


@pytest.fixture
def rollbar_recorder() -> Iterator[RollbarRecorder]:
    # Only receives here: the gateway under test is another process, which reports to it.
    recorder = RollbarRecorder()
    recorder.start()
    yield recorder
    recorder.stop()
