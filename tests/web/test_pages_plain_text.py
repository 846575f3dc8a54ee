"""The words pages build from job messages and dates: what a clinician reads carries no network
address, file path or database text, and every date reads the same way."""

from __future__ import annotations

from datetime import UTC, date, datetime

from gateway.web.identity import pn_text
from gateway.web.redact import for_clinicians, for_staff
from gateway.web.when import day_text, moment_text


def test_a_clinician_reads_the_reason_without_the_machinery():
    message = (
        'The PACS "main" could not be reached: nothing is listening on 10.0.0.5:4242 '
        "(connection refused). Next try in 2 min (attempt 2 of 30)."
    )
    shown = for_clinicians(message)
    assert "10.0.0.5" not in shown and "4242" not in shown and "Next try in" not in shown
    assert shown.startswith('The PACS "main" could not be reached')
    assert "(attempt 2 of 30)" in shown
    assert "10.0.0.5:4242" in for_staff(message)  # staff keep it, for IT

    for raw, gone in [
        ("Could not write /srv/gateway/var/studies/1.2/3.dcm: disk full.", "/srv"),
        ("Storage failed at var/studies/1.2.3/x.dcm.", "var/studies"),
        ("The database failed [SQL: SELECT * FROM study WHERE pacs_patient_id = ?]", "SELECT"),
        ("pacs.example.org:104 refused the association.", "pacs.example.org"),
    ]:
        assert gone not in for_clinicians(raw), raw


def test_a_time_of_day_is_not_taken_for_an_address():
    assert for_clinicians("It tries again at 1 Dec 2026, 15:52.") == (
        "It tries again at 1 Dec 2026, 15:52."
    )


def test_every_date_reads_the_same_way():
    assert day_text("19751105") == day_text("1975-11-05") == day_text(date(1975, 11, 5))
    assert day_text(date(1975, 11, 5)) == "5 Nov 1975"
    assert day_text("") == "" and day_text(None) == ""
    assert day_text("not a date") == "not a date"
    moment = moment_text(datetime(2026, 12, 1, 15, 47, tzinfo=UTC))
    assert moment.startswith("1 Dec 2026, ") and len(moment) == len("1 Dec 2026, 15:47")


def test_a_name_reads_family_first_in_each_of_its_groups():
    assert pn_text("Yamada^Tarou=山田^太郎=やまだ^たろう") == (
        "Yamada, Tarou",
        "山田 太郎",
        "やまだ たろう",
    )
    assert pn_text("van der Berg-Smit^Anne Marie") == ("van der Berg-Smit, Anne Marie", "", "")
    assert pn_text("") == ("", "", "")
