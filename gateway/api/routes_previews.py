"""Preview and thumbnail PNGs of stored series, rendered once into <data_dir>/previews.

A cached preview is answered from one stat() and one read of a small file, on the event
loop: cheaper than a thread hop, and it is what a browser showing a study list asks for
dozens of times. Only a miss (which decodes DICOM) goes to a worker thread. A series whose
pixels cannot be drawn gets a placeholder PNG with `X-Preview-Unavailable`, never a 500.
"""

from __future__ import annotations

import functools
import logging
import re
from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Request, Response
from pydicom import dcmread
from starlette.concurrency import run_in_threadpool

from gateway.api.access_deps import study_view
from gateway.api.auth import Permission, require
from gateway.api.deps import GatewayDep
from gateway.api.problems import ApiProblem
from gateway.api.routes_studies import UID_PATTERN, StudyUid
from gateway.api.schemas import API
from gateway.index.catalog import Catalog, StoredFile, series_of
from gateway.service import Gateway
from pacs.preview import (
    PREVIEW_SIZE,
    THUMBNAIL_SIZE,
    Kind,
    PreviewCache,
    PreviewUnavailable,
)
from pacs.preview import placeholder_png as _placeholder_png

router = APIRouter(
    prefix=f"{API}/studies",
    tags=["previews"],
    dependencies=[Depends(require(Permission.READ)), Depends(study_view("view.preview"))],
)
log = logging.getLogger("gateway.api.previews")

UNAVAILABLE_HEADER = "X-Preview-Unavailable"
PNG = "image/png"

SeriesUid = Annotated[
    str, Path(max_length=64, pattern=UID_PATTERN, description="Series Instance UID.")
]

_PNG_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {PNG: {}},
        "description": "The PNG; a grey placeholder with an `X-Preview-Unavailable` header "
        "when the series' pixels cannot be drawn.",
    },
    304: {"description": "Not modified: the `If-None-Match` ETag is current."},
}


def preview_url(study_uid: str, series_uid: str, kind: Kind = "preview") -> str:
    return f"{API}/studies/{study_uid}/series/{series_uid}/{kind}.png"


@router.get(
    "/{study_uid}/series/{series_uid}/preview.png",
    response_class=Response,
    responses=_PNG_RESPONSES,
    summary="Preview of a series (PNG, longest side at most 1024 px)",
)
async def series_preview(
    study_uid: StudyUid, series_uid: SeriesUid, request: Request, gateway: GatewayDep
) -> Response:
    return await serve_preview(request, gateway, study_uid, series_uid, "preview")


@router.get(
    "/{study_uid}/series/{series_uid}/thumbnail.png",
    response_class=Response,
    responses=_PNG_RESPONSES,
    summary="Thumbnail of a series (PNG, longest side at most 128 px)",
)
async def series_thumbnail(
    study_uid: StudyUid, series_uid: SeriesUid, request: Request, gateway: GatewayDep
) -> Response:
    return await serve_preview(request, gateway, study_uid, series_uid, "thumbnail")


@router.get(
    "/{study_uid}/preview.png",
    response_class=Response,
    responses=_PNG_RESPONSES,
    summary="Preview of a study: its first series' preview",
    description="The first series is the one with the lowest Series Number.",
)
async def study_preview(study_uid: StudyUid, request: Request, gateway: GatewayDep) -> Response:
    files = await run_in_threadpool(_catalog(gateway).files, study_uid)
    if not files:
        raise _study_not_found()
    first = await run_in_threadpool(_first_series, series_of(files))
    return await serve_preview(request, gateway, study_uid, first, "preview")


async def serve_preview(
    request: Request, gateway: Gateway, study_uid: str, series_uid: str, kind: Kind
) -> Response:
    cache = preview_cache(request.app, gateway)
    try:
        # A cached file exists only for a series that was indexed when it was rendered, so
        # a hit needs no database read.
        path = cache.lookup(study_uid, series_uid, kind)
    except PreviewUnavailable as exc:  # known broken: logged when it was first found
        return placeholder_response(exc.reason, kind)
    if path is None:
        files = await run_in_threadpool(_catalog(gateway).files, study_uid, series_uid)
        if not files:
            raise await _not_found(gateway, study_uid)
        try:
            path = await run_in_threadpool(
                cache.get_or_render, study_uid, series_uid, [f.path for f in files], kind
            )
        except PreviewUnavailable as exc:
            # The reason names what is wrong with the image, never the patient.
            log.warning("No preview for a series: %s", exc.reason)
            return placeholder_response(exc.reason, kind)
        except Exception as exc:  # a decoder bug must not turn a picture into a 500
            log.error("Preview rendering failed with %s", type(exc).__name__)
            return placeholder_response("the image could not be drawn", kind)
    return _png_file(request, path, gateway.settings.preview_max_age)


def preview_cache(_app: FastAPI, gateway: Gateway) -> PreviewCache:
    """The gateway's one PreviewCache (its per-series locks make concurrent misses render
    once; the study index forgets a study's previews when the study changes)."""
    return gateway.previews


def _png_file(request: Request, path: FsPath, max_age: int) -> Response:
    stat = path.stat()
    # Size and mtime change whenever the file is rendered again; no need to hash contents.
    etag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
    headers = {"ETag": etag, "Cache-Control": f"private, max-age={max_age}"}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    with open(path, "rb") as f:
        data = f.read()
    return Response(data, media_type=PNG, headers=headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    # Weak comparison (RFC 9110 13.1.2): W/ prefixes are ignored.
    candidates = {c.strip().removeprefix("W/") for c in if_none_match.split(",")}
    return "*" in candidates or etag in candidates


def placeholder_response(reason: str, kind: Kind) -> Response:
    """200 with a grey placeholder PNG; the reason (patient-free) in X-Preview-Unavailable."""
    size = THUMBNAIL_SIZE if kind == "thumbnail" else PREVIEW_SIZE // 2
    # no-cache: once the series is fetched again the real image should show.
    headers = {UNAVAILABLE_HEADER: _header_text(reason), "Cache-Control": "private, no-cache"}
    return Response(_placeholder_bytes(size), media_type=PNG, headers=headers)


@functools.lru_cache(maxsize=4)
def _placeholder_bytes(size: int) -> bytes:
    # One text for every reason: the header says why, the image only that there is none.
    return _placeholder_png("Preview not available", size)


def _header_text(reason: str) -> str:
    # Header values are latin-1 without control characters; reasons are short English.
    return re.sub(r"[^\x20-\x7e]", "?", reason)[:200] or "unavailable"


def _first_series(series: dict[str, list[StoredFile]]) -> str:
    def rank(item: tuple[str, list[StoredFile]]) -> tuple[int, int, str]:
        uid, files = item
        number = _series_number(files[0].path)
        return (number is None, number or 0, uid)

    return min(series.items(), key=rank)[0]


def _series_number(path: FsPath) -> int | None:
    try:
        header = dcmread(path, stop_before_pixels=True, specific_tags=["SeriesNumber"])
        return int(header.SeriesNumber)
    except (AttributeError, OSError, TypeError, ValueError, EOFError):
        return None


def _catalog(gateway: Gateway) -> Catalog:
    return Catalog(gateway.engine, gateway.node.store.root)


async def _not_found(gateway: Gateway, study_uid: str) -> ApiProblem:
    if await run_in_threadpool(_catalog(gateway).has_study, study_uid):
        return ApiProblem(
            404, "The study has no series with this UID in the store.", kind="series-not-found"
        )
    return _study_not_found()


def _study_not_found() -> ApiProblem:
    return ApiProblem(
        404,
        "The gateway has no study with this UID; fetch the patient's studies first.",
        kind="study-not-found",
    )
