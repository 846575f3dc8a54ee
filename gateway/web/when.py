"""The one way pages say when: every date and time a page shows comes from here.

Rendered on the server, in the gateway's local time zone, so the first render, the live
updates of the job page (panel HTML rendered by the same templates) and every other page say
the same thing in the same words: "1 Dec 2026, 15:47" for a moment, "5 Nov 1975" for a day.
No relative wording ("in about 2 seconds"): it goes stale on a page left open.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, tzinfo

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# A retry's own message ends with its relative wording ("… Next try in 10 s (attempt 2 of
# 30)."); the page says when in its own words instead.
_RELATIVE_NEXT_TRY = re.compile(r"\s*Next try in [^(.]*(?=\(|\.|$)")


def local_zone() -> tzinfo:
    """The zone of the machine the gateway runs on: the practice's."""
    zone = datetime.now().astimezone().tzinfo
    return zone if zone is not None else UTC


def moment_text(value: datetime | None) -> str:
    """'1 Dec 2026, 15:47' in the gateway's zone; '' for None."""
    if not isinstance(value, datetime):  # None, or a template's undefined value
        return ""
    if value.tzinfo is None:  # the stores hand out UTC, naive on some databases
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(local_zone())
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year}, {local:%H:%M}"


def day_text(value: date | str | None) -> str:
    """'5 Nov 1975' from a date, an ISO date ('1975-11-05') or a DICOM DA ('19751105');
    text that is neither comes back as it is, '' for None or empty."""
    if not value or not isinstance(value, date | str):
        return ""
    if isinstance(value, datetime):
        return moment_text(value)
    if isinstance(value, str):
        text = value.strip()
        parsed = _parse_day(text)
        if parsed is None:
            return text
        value = parsed
    return f"{value.day} {_MONTHS[value.month - 1]} {value.year}"


def without_relative_time(message: str) -> str:
    """A job message without its "Next try in 10 s" part (the page gives the time itself)."""
    cleaned = _RELATIVE_NEXT_TRY.sub("", message).strip()
    cleaned = re.sub(r"\.\s*\(", " (", cleaned)
    return cleaned


def _parse_day(text: str) -> date | None:
    for candidate in (text, f"{text[:4]}-{text[4:6]}-{text[6:8]}" if len(text) == 8 else ""):
        try:
            return date.fromisoformat(candidate)
        except ValueError:
            continue
    return None
