"""Outage drill: a fresh Orthanc goes down mid-retrieve, refuses, stays down past the budget."""

from __future__ import annotations

from bench.drills import outage_drill


def test_outage_drill(drill_env, orthanc_factory):
    figures = outage_drill(drill_env, orthanc_factory)
    assert "could not be reached" in figures.waiting_message
    assert "Next try in" in figures.waiting_message
    assert figures.instances_checked == 240
    assert "as a move destination" in figures.refused_message
    assert "Check the PACS's AE title" in figures.wrong_ae_message
    assert "Gave up after 2 attempts" in figures.gave_up_message
