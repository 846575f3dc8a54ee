"""Crash drill, short form: SIGKILL `serve` 3 times mid-fetch; nothing lost, doubled or torn."""

from __future__ import annotations

from bench.drills import crash_drill


def test_crash_drill_three_rounds(drill_env):
    figures = crash_drill(drill_env, rounds=3)
    assert figures.rounds == 3
    assert figures.jobs_failed == 0
    assert (figures.lost, figures.duplicated, figures.corrupt) == (0, 0, 0)
    assert figures.incoming_left == 0
    assert figures.instances_checked > 0
