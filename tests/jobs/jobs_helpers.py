"""Helpers shared by the jobs tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from orthanc_server import wait_until

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll `condition` until it returns something truthy, and return that; fail after
    `timeout` seconds."""
    seen: list[T] = []

    def holds() -> bool:
        seen[:] = [condition()]
        return bool(seen[0])

    if not wait_until(holds, timeout, interval=0.01):
        raise AssertionError(f"{what} not met within {timeout} s")
    return seen[0]


class FakeClock:
    """A clock for JobStore that moves only when told to."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
