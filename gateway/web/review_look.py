"""A look at a waiting study before staff decide whose it is.

- A study sent unasked (a push) is already in the store: one thumbnail per series, rendered
  from those files into a cache of its own (`<data_dir>/review-looks`), never into the
  previews clinicians' pages serve, and the study stays out of every patient's index until
  the item is resolved.
- A study found by query is not on disk: the item's page shows what the PACS says about it
  (its series, their descriptions, kinds of image and image counts), asked with one
  SERIES-level C-FIND when a staff member opens the item.

Nothing here is logged with patient data; a PACS that cannot be asked gives a sentence.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from gateway.review import ReviewItem, ReviewOrigin
from gateway.service import Gateway
from gateway.web.session import PAGES
from pacs.errors import PacsError
from pacs.preview.cache import PreviewCache
from pacs.query import find_series

log = logging.getLogger(__name__)

LOOK_DIR = "review-looks"
SERIES_SHOWN = 12


@dataclass(frozen=True)
class SeriesLook:
    series_uid: str
    description: str
    modality: str
    images: int | None
    thumbnail: str  # address of a staff-only thumbnail, or ""


@dataclass(frozen=True)
class Look:
    item_id: int
    # "received": the files are here; "pacs": what the PACS said; "none": neither.
    source: str
    sentence: str
    series: tuple[SeriesLook, ...] = ()
    more: int = 0


def look_cache(gateway: Gateway) -> PreviewCache:
    return PreviewCache(gateway.settings.data_dir / LOOK_DIR)


def received_files(gateway: Gateway, item: ReviewItem) -> dict[str, list[Path]]:
    """The item's files in the store, by series (pushed studies only)."""
    if item.origin is not ReviewOrigin.PUSH:
        return {}
    folder = gateway.index.store_root / item.study_uid
    if not folder.is_dir():
        return {}
    found: dict[str, list[Path]] = {}
    for series_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = sorted(series_dir.glob("*.dcm"))
        if files:
            found[series_dir.name] = files
    return found


def review_look(gateway: Gateway, item: ReviewItem) -> Look:
    if item.origin is ReviewOrigin.PUSH:
        by_series = received_files(gateway, item)
        if not by_series:
            return Look(item.id, "none", "The images sent are no longer in the gateway's store.")
        shown = list(by_series.items())[:SERIES_SHOWN]
        return Look(
            item.id,
            "received",
            "The images as they were sent (only staff see these until the study is resolved):",
            tuple(
                SeriesLook(uid, "", "", len(files), look_path(item.id, uid)) for uid, files in shown
            ),
            more=len(by_series) - len(shown),
        )
    try:
        peer = gateway.settings.peer(item.pacs_name or None)
        series = find_series(peer, gateway.settings.ae_title, item.study_uid)
    except (PacsError, LookupError, ValueError, OSError) as exc:
        log.info("The PACS could not be asked about a review item's series: %s", type(exc).__name__)
        return Look(
            item.id,
            "none",
            "The imaging system could not be asked about this study just now; reload the page"
            " to try again.",
        )
    if not series:
        return Look(item.id, "none", "The imaging system lists no series for this study.")
    ordered = sorted(series, key=lambda s: (s.number is None, s.number or 0, s.series_uid))
    shown = ordered[:SERIES_SHOWN]
    return Look(
        item.id,
        "pacs",
        "What the imaging system says this study holds (the images are fetched once it is"
        " resolved):",
        tuple(
            SeriesLook(s.series_uid, s.description, s.modality, s.number_of_instances, "")
            for s in shown
        ),
        more=len(ordered) - len(shown),
    )


def look_path(item_id: int, series_uid: str) -> str:
    return f"{PAGES}/review/{item_id}/look/{series_uid}.png"
