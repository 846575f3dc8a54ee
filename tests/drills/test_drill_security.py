"""Security drill: keys on every route, no key or patient datum in logs or Rollbar, no path
out of the store, unknown AE titles refused."""

from __future__ import annotations

from bench.drills import security_drill


def test_security_drill(drill_env, rollbar_recorder):
    figures = security_drill(drill_env, rollbar_recorder.endpoint, rollbar_recorder.everything)
    assert figures.routes > 0
    assert figures.refused_without_key == figures.refused_bad_key == figures.routes
    assert figures.keys_in_log == 0
    assert figures.patient_values_leaked == []
    assert figures.rollbar_items > 0  # the failing jobs did report: the check saw payloads
    assert figures.unknown_ae == "rejected"
    assert figures.files_outside_store == 0
