"""Job messages as clinicians see them: what happened and what to do, without the machinery.

A job's message is written for everyone who reads the API, and may name the PACS's network
address ("nothing is listening on 10.0.0.5:4242"), a file of the store, or a database error's
text. Staff and administrators see it whole; on clinicians' pages those parts become words
(the fallback procedure tells them whom to call, and IT finds the details on the dashboard).
"""

from __future__ import annotations

import re
from dataclasses import replace

from gateway.web.job_page import JobView
from gateway.web.when import without_relative_time

# 10.0.0.5:4242, pacs.example:104, [::1]:11112
# (A time such as 15:52 is no address: a host name starts with a letter, an IP has dots.)
_ADDRESS = re.compile(
    r"(?:\[[0-9A-Fa-f:]+\]|\b\d{1,3}(?:\.\d{1,3}){3}|\b[A-Za-z][A-Za-z0-9.-]*):\d{1,5}\b"
)
# An absolute path, or one under the store (var/studies/...), up to a space or quote.
_PATH = re.compile(r"(?<![\w/])(?:/|[A-Za-z]:\\|var/)[^\s\"'“”,;)]*[^\s\"'“”,;):.]")
# SQLAlchemy's "[SQL: ...]" / "(Background on this error at: ...)" tails.
_SQL = re.compile(r"\s*[\[(](?:SQL|parameters|Background on this error)[^\])]*[\])]", re.S)


def for_clinicians(message: str) -> str:
    """`message` without network addresses, file paths, database text or relative times."""
    text = _SQL.sub("", message)
    text = _ADDRESS.sub("the PACS's address", text)
    text = _PATH.sub("a file of the gateway", text)
    return without_relative_time(text)


def for_staff(message: str) -> str:
    """Staff keep every detail; only the stale relative time goes."""
    return without_relative_time(message)


def view_for(view: JobView, *, staff: bool) -> JobView:
    """The job page's view for its reader: the same view, its sentences cleaned for them."""
    clean = for_staff if staff else for_clinicians
    return replace(view, sentence=clean(view.sentence), detail=clean(view.detail))
