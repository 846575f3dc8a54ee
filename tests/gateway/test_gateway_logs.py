"""Operators' log lines: timestamps, JSON on request, pynetdicom kept short and out of Rollbar."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from gateway.core import logs


class Recorder(logging.Handler):
    """Stands in for the Rollbar handler, which practice.py adds to the root logger."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def stream():
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    noisy = logging.getLogger("pynetdicom")
    saved_noisy = (noisy.handlers[:], noisy.level, noisy.propagate)
    out = io.StringIO()
    yield out
    root.handlers[:], root.level = saved[0], saved[1]
    noisy.handlers[:], noisy.level, noisy.propagate = saved_noisy


def test_text_lines_carry_a_timestamp_and_job_fields(stream):
    logs.configure("text", stream=stream)
    logging.getLogger("jobs.store").info(
        "job succeeded", extra={"job_id": "j-1", "kind": "fetch", "instances": 12}
    )
    line = stream.getvalue().strip()
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00 INFO jobs.store: ", line)
    assert line.endswith("job succeeded [job_id=j-1 kind=fetch instances=12]")


def test_json_is_one_object_per_line(stream):
    logs.configure("json", stream=stream)
    log = logging.getLogger("gateway.test")
    log.warning("first %s", "value", extra={"job_id": "j-2", "bytes": 1024})
    try:
        raise ValueError("broken")
    except ValueError:
        log.exception("second")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2  # the traceback stays inside its object
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "first value" and first["level"] == "WARNING"
    assert first["job_id"] == "j-2" and first["bytes"] == 1024
    assert first["time"].endswith("+00:00")
    assert "ValueError: broken" in second["exception"]


def test_pynetdicom_errors_never_reach_rollbar_and_are_limited(stream):
    logs.configure("text", stream=stream, burst=3)
    rollbar = Recorder()
    logging.getLogger().addHandler(rollbar)
    try:
        for _ in range(50):
            logging.getLogger("pynetdicom.assoc").error("Association Aborted (%s)", "A-P-ABORT")
        logging.getLogger("gateway.test").error("ours")
    finally:
        logging.getLogger().removeHandler(rollbar)
    assert stream.getvalue().count("Association Aborted") == 3
    assert [r.name for r in rollbar.records] == ["gateway.test"]


def test_rate_limit_says_how_many_lines_it_left_out():
    now = [0.0]
    limit = logs.RateLimit(burst=2, window=60, clock=lambda: now[0])

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("pynetdicom", logging.ERROR, "", 0, msg, ("x",), None)

    passed = [limit.filter(record("Aborted %s")) for _ in range(10)]
    assert passed == [True, True] + [False] * 8
    assert limit.filter(record("Other %s"))  # each message has its own budget
    now[0] = 61.0
    late = record("Aborted %s")
    assert limit.filter(late)
    assert late.getMessage() == "Aborted x (8 similar lines left out before this one)"


def test_repeated_preview_refusals_are_limited_per_line(stream):
    logs.configure("text", stream=stream, burst=2)
    log = logging.getLogger("gateway.api.previews")
    try:
        for _ in range(10):
            log.warning("No preview for a series: %s", "the image is too large")
            log.warning("No preview for a series: %s", "BitsAllocated 0 is not valid")
    finally:
        for limit in [f for f in log.filters if isinstance(f, logs.RateLimit)]:
            log.removeFilter(limit)
    assert stream.getvalue().count("too large") == 2
    assert stream.getvalue().count("BitsAllocated 0") == 2
