"""Hostile DICOM, short form: size bombs and broken headers fetched, previews asked at once."""

from __future__ import annotations

from bench.drills import hostile_drill


def test_hostile_drill(drill_env):
    figures = hostile_drill(drill_env, concurrency=6, rounds=2)
    assert figures.serve_alive
    assert figures.statuses == {200: figures.requests}
    assert figures.drawn > 0
    assert figures.placeholders == figures.requests - figures.drawn
    assert figures.rss_peak_mb <= figures.rss_limit_mb
    assert figures.patient_values_in_log == 0
