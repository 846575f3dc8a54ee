"""Fixtures for the practice side: SQLite R4, fake Flynotes, moto SQS, a Rollbar recorder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from r4_testkit import LICENCE, Queues, RollbarRecorder, running_moto
from sqlalchemy import Engine

from gateway.practice import reporting
from r4.database import create_r4_engine
from r4.flynotes import FlynotesClient
from testkit.fake_flynotes import FakeFlynotes
from testkit.sample_data import FULL_TEST_MAPPING, PracticeSummary, generate_practice


@pytest.fixture
def practice(tmp_path) -> tuple[Engine, PracticeSummary]:
    """A sys2000-shaped practice with every optional part mapped (history, address, flag)."""
    engine = create_r4_engine(f"sqlite:///{tmp_path / 'sys2000.db'}", FULL_TEST_MAPPING)
    summary = generate_practice(engine, 250, seed=7)
    yield engine, summary
    engine.dispose()


@pytest.fixture
def fake_flynotes() -> Iterator[FakeFlynotes]:
    with FakeFlynotes(LICENCE) as fake:
        yield fake


@pytest.fixture
def flynotes_client(fake_flynotes) -> Iterator[FlynotesClient]:
    with FlynotesClient(
        fake_flynotes.url,
        LICENCE,
        timeout=5,
        max_attempts=5,
        backoff_initial=0.01,
        backoff_max=0.05,
    ) as client:
        yield client


# --- SQS through a real moto server over HTTP ------------------------------------------------


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with running_moto() as endpoint:
        yield endpoint


@pytest.fixture
def queues(moto_endpoint) -> Queues:
    return Queues(moto_endpoint)


# --- Rollbar recorder --------------------------------------------------------------------------


@pytest.fixture
def rollbar_recorder() -> Iterator[RollbarRecorder]:
    recorder = RollbarRecorder()
    recorder.start()
    reporting.configure("test-token", "test", endpoint=recorder.endpoint, handler="blocking")
    yield recorder
    # Don't leave the process-wide client pointing at a recorder that is gone.
    reporting.configure("test-token", "test", handler="blocking", enabled=False)
    recorder.stop()
