"""The template filters and functions that put the pages in the practice's words; installed
on the pages' jinja2 environment by gateway.web.install."""

from __future__ import annotations

from jinja2 import Environment

from gateway.web.identity import sex_words
from gateway.web.plain_words import (
    action_words,
    candidate_points,
    closeness,
    item_reasons,
    origin_text,
)
from gateway.web.redact import for_clinicians
from gateway.web.when import day_text, moment_text


def register(env: Environment) -> None:
    env.filters.update(
        moment=moment_text, day=day_text, sex_words=sex_words, for_clinicians=for_clinicians
    )
    env.globals.update(
        item_reasons=item_reasons,
        candidate_points=candidate_points,
        closeness=closeness,
        origin_text=origin_text,
        action_words=action_words,
    )
