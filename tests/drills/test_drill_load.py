"""Load drill, short form: 10 concurrent fetch jobs within the PACS's association limit."""

from __future__ import annotations

from bench.drills import load_drill


def test_load_drill_ten_jobs(drill_env):
    figures = load_drill(drill_env, jobs=10)
    assert figures.succeeded == 10
    assert figures.association_failures == 0
    assert 1 <= figures.peak_associations <= figures.max_associations
    assert figures.polls > 0
