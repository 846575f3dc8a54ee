"""Fuzzing, short form: schemathesis on the API (with and without a key), abuse of the SCP."""

from __future__ import annotations

from bench.drills import fuzz_drill


def test_fuzz_drill(drill_env):
    figures = fuzz_drill(drill_env, examples=5, max_time=5)
    assert figures.server_errors == 0
    assert figures.crashes == 0
    assert figures.good_instance_accepted
    assert figures.dicom_statuses["unknown calling AE"] == "rejected"
