"""Links from a study to the image viewers a practice uses (OHIF, Orthanc's viewer, Weasis...).

Configured as `viewer_links` (a list of {name, url_template}); `{study_uid}` in a template is
replaced by the URL-encoded Study Instance UID. Only the study UID is offered: a viewer link
ends up in browser histories and proxy logs, where a patient id must not.

The API's study responses read the configured links from `current_viewer_links`, which
`bind_viewer_links` (a router dependency in create_app) sets per request from the Gateway's
settings, so StudyOut can render them without every caller passing settings along.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextvars import ContextVar
from urllib.parse import quote

from fastapi import Request
from pydantic import BaseModel, Field, field_validator

PLACEHOLDERS = frozenset({"study_uid"})
# `{name}` with a bare identifier inside: other braces (e.g. in a weasis:// command) are text.
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ViewerLink(BaseModel):
    """One image viewer a study can be opened in."""

    name: str = Field(min_length=1, max_length=64, description="Label shown to people.")
    url_template: str = Field(
        min_length=1,
        max_length=2000,
        description="Address of the study in the viewer; `{study_uid}` is replaced by the "
        "URL-encoded Study Instance UID.",
    )

    @field_validator("url_template")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        unknown = set(_PLACEHOLDER.findall(value)) - PLACEHOLDERS
        if unknown:
            raise ValueError(
                f"url_template may only use {{study_uid}}, not {{{sorted(unknown)[0]}}}"
            )
        return value

    def url_for(self, study_uid: str) -> str:
        # quote(safe=""): a UID is digits and dots, but the template cannot know that the
        # value it gets was checked, so nothing is inserted unencoded.
        return self.url_template.replace("{study_uid}", quote(study_uid, safe=""))


def render_links(links: Sequence[ViewerLink], study_uid: str) -> list[tuple[str, str]]:
    """(name, url) of each configured viewer for one study, in configuration order."""
    return [(link.name, link.url_for(study_uid)) for link in links]


current_viewer_links: ContextVar[tuple[ViewerLink, ...]] = ContextVar(
    "current_viewer_links", default=()
)


async def bind_viewer_links(request: Request) -> None:
    """Router dependency: the running Gateway's viewer links, for this request's responses.

    Async on purpose: it runs in the request's own context, which FastAPI copies into the
    thread of a sync endpoint, so the endpoint sees the value set here."""
    current_viewer_links.set(tuple(request.app.state.gateway.settings.viewer_links))
