"""Staff-only thumbnails of a pushed study waiting in the review queue (gateway.web.review_look):
rendered from the files received into a cache of their own, never the clinicians' previews."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from gateway.api.routes_previews import placeholder_response
from gateway.review import ReviewItem
from gateway.service import Gateway
from gateway.web.pages_review import Reviewer
from gateway.web.review_look import look_cache, received_files
from gateway.web.session import PAGES
from gateway.web.templating import NO_STORE, PageNotFound
from pacs.preview.errors import PreviewUnavailable

router = APIRouter(prefix=PAGES, include_in_schema=False)
_ITEM_ID = re.compile(r"^[0-9]{1,12}$")
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_NOTHING = "There is no image at this address."


@router.get("/review/{item_id}/look/{series_uid}.png")
async def look_thumbnail(
    request: Request, item_id: str, series_uid: str, user: Reviewer
) -> Response:
    gateway: Gateway = request.app.state.gateway
    if not _ITEM_ID.match(item_id) or len(series_uid) > 64 or not _UID.match(series_uid):
        raise PageNotFound(_NOTHING)
    item = await run_in_threadpool(gateway.review.get, int(item_id))
    if item is None or not item.is_open:
        raise PageNotFound(_NOTHING)
    files = (await run_in_threadpool(received_files, gateway, item)).get(series_uid)
    if not files:
        raise PageNotFound(_NOTHING)
    await run_in_threadpool(_seen, gateway, user.name, item, series_uid)
    try:
        path = await run_in_threadpool(
            look_cache(gateway).get_or_render, item.study_uid, series_uid, files, "thumbnail"
        )
    except PreviewUnavailable as exc:
        return placeholder_response(exc.reason, "thumbnail")
    return FileResponse(path, media_type="image/png", headers=NO_STORE)


def _seen(gateway: Gateway, actor: str, item: ReviewItem, series_uid: str) -> None:
    gateway.access.viewed(
        actor,
        "view.preview",
        f"review:{item.id}",
        {"pacs_patient_id": item.pacs_patient_id},
        study_uid=item.study_uid,
        series_uid=series_uid,
    )
