"""The fallback procedure's page: the document, the configured contacts after its "Who to call"
section, and when the gateway last reached each PACS.

"Last reached" is the last time a PACS answered the gateway in a way that leaves a trace: a
study it sent was indexed, or a fetch from it ended well (no study found included). The page
is public, so it names PACS and times only.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from markdown_it import MarkdownIt
from markupsafe import Markup

import jobs
from gateway.core.models import study
from gateway.service import Gateway
from gateway.web.templating import HERE
from gateway.web.when import moment_text

FALLBACK_DOCUMENT = HERE / "fallback.md"
CONTACTS_AFTER = "## Who to call"


@dataclass(frozen=True)
class Reached:
    pacs: str
    when: str  # "" when never


@functools.cache
def document_parts() -> tuple[Markup, Markup]:
    """The document rendered in two parts: up to the end of "Who to call", and the rest."""
    text = FALLBACK_DOCUMENT.read_text(encoding="utf-8")
    start = text.find(CONTACTS_AFTER)
    cut = text.find("\n## ", start + len(CONTACTS_AFTER)) if start >= 0 else -1
    if cut < 0:
        return _render(text), Markup("")
    return _render(text[: cut + 1]), _render(text[cut + 1 :])


def last_reached(gateway: Gateway) -> list[Reached]:
    """Each configured PACS with the last time it answered, newest knowledge of either kind."""
    with gateway.engine.connect() as conn:
        fetched = dict(
            conn.execute(
                sa.select(study.c.pacs_name, sa.func.max(study.c.fetched_at)).group_by(
                    study.c.pacs_name
                )
            ).all()
        )
    rows = []
    for entry in gateway.settings.pacs:
        times: list[datetime] = [t for t in (fetched.get(entry.name),) if t is not None]
        done = gateway.jobs.list(
            kind="fetch",
            state=jobs.JobState.SUCCEEDED,
            params_match={"pacs": entry.name},
            limit=1,
        )
        if done:
            times.append(done[0].finished_at or done[0].updated_at)
        latest = max(times, key=_utc_key) if times else None
        rows.append(Reached(entry.name, moment_text(latest)))
    return rows


def _utc_key(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def _render(text: str) -> Markup:
    # Raw HTML off: the document is ours, but nothing in it needs to be more than markdown.
    renderer = MarkdownIt("commonmark", {"html": False}).enable("table")
    return Markup(renderer.render(text))
