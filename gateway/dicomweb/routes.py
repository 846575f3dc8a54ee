"""QIDO-RS and WADO-RS routes over the store. Read permission, Bearer API keys.

Files are served exactly as stored (whatever transfer syntax the PACS sent): a client asking
for one specific other syntax still gets the stored one, which each part's file meta names.
Sync endpoints: they read the database and file headers, so FastAPI runs them in threads.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from gateway.api.access_deps import study_view
from gateway.api.auth import Permission, require
from gateway.api.deps import GatewayDep
from gateway.api.problems import ApiProblem
from gateway.api.routes_previews import placeholder_response, preview_cache
from gateway.api.routes_studies import UID_PATTERN
from gateway.api.schemas import MAX_OFFSET
from gateway.dicomweb import dicom_json, multipart
from gateway.index.catalog import BadQuery, Catalog, StoredFile, parse_filter, series_of
from gateway.service import Gateway
from pacs.preview import ImageFormat, PreviewUnavailable, render_preview

PREFIX = "/dicomweb"
DICOM_JSON = "application/dicom+json"

log = logging.getLogger("gateway.dicomweb")

router = APIRouter(
    prefix=PREFIX,
    tags=["dicomweb"],
    # After the key check: who opened which study (once per key and study a while).
    dependencies=[Depends(require(Permission.READ)), Depends(study_view("view.dicomweb"))],
)


def _uid(what: str) -> Any:
    return Path(max_length=64, pattern=UID_PATTERN, description=f"{what} Instance UID.")


StudyUid = Annotated[str, _uid("Study")]
SeriesUid = Annotated[str, _uid("Series")]
SopUid = Annotated[str, _uid("SOP")]

_JSON_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {DICOM_JSON: {}}, "description": "A JSON array of DICOM JSON datasets."}
}
_MULTIPART_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {'multipart/related; type="application/dicom"': {}},
        "description": "One part per instance: the stored Part 10 file, bytes unchanged.",
    }
}
_IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}, "image/jpeg": {}}, "description": "The rendered image."}
}


# -- QIDO-RS -----------------------------------------------------------------------------


@router.get(
    "/studies",
    response_class=Response,
    responses=_JSON_RESPONSES,
    summary="QIDO-RS: search the stored studies",
)
def search_studies(
    request: Request,
    gateway: GatewayDep,
    patient_id: Annotated[
        str | None, Query(alias="PatientID", max_length=64, description="Exact PatientID.")
    ] = None,
    study_uids: Annotated[
        str | None, Query(alias="StudyInstanceUID", max_length=4096, description="Comma list.")
    ] = None,
    study_date: Annotated[
        str | None,
        Query(alias="StudyDate", max_length=17, description="YYYYMMDD or a range A-B, -B, A-."),
    ] = None,
    modalities: Annotated[
        str | None, Query(alias="ModalitiesInStudy", max_length=200, description="Comma list.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most results returned.")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Results skipped first.")] = 0,
) -> Response:
    try:
        match = parse_filter(patient_id, study_uids, study_date, modalities)
    except BadQuery as exc:
        raise ApiProblem(400, f"{exc}.", kind="invalid-query") from None
    catalog = _catalog(gateway)
    results = []
    for row in catalog.search_studies(match, limit=limit, offset=offset):
        first = next(iter(catalog.files(row.study_uid)), None)
        url = _url(request, f"studies/{row.study_uid}")
        results.append(dicom_json.study_result(row, first, url))
    return _dicom_json(results)


@router.get(
    "/studies/{study_uid}/series",
    response_class=Response,
    responses=_JSON_RESPONSES,
    summary="QIDO-RS: the series of a stored study",
)
def search_series(study_uid: StudyUid, request: Request, gateway: GatewayDep) -> Response:
    grouped = series_of(_files(gateway, study_uid))
    return _dicom_json(
        [
            dicom_json.series_result(files, _url(request, f"studies/{study_uid}/series/{uid}"))
            for uid, files in grouped.items()
        ]
    )


@router.get(
    "/studies/{study_uid}/series/{series_uid}/instances",
    response_class=Response,
    responses=_JSON_RESPONSES,
    summary="QIDO-RS: the instances of a stored series",
)
def search_instances(
    study_uid: StudyUid, series_uid: SeriesUid, request: Request, gateway: GatewayDep
) -> Response:
    base = f"studies/{study_uid}/series/{series_uid}/instances"
    return _dicom_json(
        [
            dicom_json.instance_result(f, _url(request, f"{base}/{f.sop_instance_uid}"))
            for f in _files(gateway, study_uid, series_uid)
        ]
    )


# -- WADO-RS -----------------------------------------------------------------------------


@router.get(
    "/studies/{study_uid}",
    response_class=StreamingResponse,
    responses=_MULTIPART_RESPONSES,
    summary="WADO-RS: every instance of a study",
)
def retrieve_study(study_uid: StudyUid, gateway: GatewayDep) -> StreamingResponse:
    return _multipart(_files(gateway, study_uid))


@router.get(
    "/studies/{study_uid}/series/{series_uid}",
    response_class=StreamingResponse,
    responses=_MULTIPART_RESPONSES,
    summary="WADO-RS: every instance of a series",
)
def retrieve_series(
    study_uid: StudyUid, series_uid: SeriesUid, gateway: GatewayDep
) -> StreamingResponse:
    return _multipart(_files(gateway, study_uid, series_uid))


@router.get(
    "/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}",
    response_class=StreamingResponse,
    responses=_MULTIPART_RESPONSES,
    summary="WADO-RS: one instance",
)
def retrieve_instance(
    study_uid: StudyUid, series_uid: SeriesUid, sop_uid: SopUid, gateway: GatewayDep
) -> StreamingResponse:
    return _multipart(_files(gateway, study_uid, series_uid, sop_uid))


@router.get(
    "/studies/{study_uid}/metadata",
    response_class=Response,
    responses=_JSON_RESPONSES,
    summary="WADO-RS: metadata of every instance of a study (no pixel data)",
)
def study_metadata(study_uid: StudyUid, gateway: GatewayDep) -> Response:
    return _dicom_json(dicom_json.metadata(_files(gateway, study_uid)))


@router.get(
    "/studies/{study_uid}/series/{series_uid}/metadata",
    response_class=Response,
    responses=_JSON_RESPONSES,
    summary="WADO-RS: metadata of every instance of a series (no pixel data)",
)
def series_metadata(study_uid: StudyUid, series_uid: SeriesUid, gateway: GatewayDep) -> Response:
    return _dicom_json(dicom_json.metadata(_files(gateway, study_uid, series_uid)))


@router.get(
    "/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}/metadata",
    response_class=Response,
    responses=_JSON_RESPONSES,
    summary="WADO-RS: metadata of one instance (no pixel data)",
)
def instance_metadata(
    study_uid: StudyUid, series_uid: SeriesUid, sop_uid: SopUid, gateway: GatewayDep
) -> Response:
    return _dicom_json(dicom_json.metadata(_files(gateway, study_uid, series_uid, sop_uid)))


@router.get(
    "/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}/rendered",
    response_class=Response,
    responses=_IMAGE_RESPONSES,
    summary="WADO-RS: one instance rendered as PNG (default) or JPEG (Accept: image/jpeg)",
    description="Multi-frame instances show their middle frame. An instance whose pixels "
    "cannot be drawn gets a placeholder PNG and an `X-Preview-Unavailable` header.",
)
async def instance_rendered(
    study_uid: StudyUid,
    series_uid: SeriesUid,
    sop_uid: SopUid,
    request: Request,
    gateway: GatewayDep,
) -> Response:
    files = await run_in_threadpool(_files, gateway, study_uid, series_uid, sop_uid)
    image_format: ImageFormat = "JPEG" if _prefers_jpeg(request.headers.get("accept")) else "PNG"
    # The previews' guard: one size limit and one set of render slots for both routes.
    guard = preview_cache(request.app, gateway).guard
    try:
        data = await run_in_threadpool(
            render_preview, files[0].path, format=image_format, guard=guard
        )
    except PreviewUnavailable as exc:
        log.warning("No rendered image for an instance: %s", exc.reason)
        return placeholder_response(exc.reason, "preview")
    return Response(data, media_type=f"image/{image_format.lower()}")


# -- helpers -----------------------------------------------------------------------------


def _catalog(gateway: Gateway) -> Catalog:
    return Catalog(gateway.engine, gateway.node.store.root)


def _files(
    gateway: Gateway, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
) -> list[StoredFile]:
    """The requested files; a 404 problem naming the level that is missing."""
    catalog = _catalog(gateway)
    files = catalog.files(study_uid, series_uid, sop_uid)
    if files:
        return files
    if not catalog.has_study(study_uid):
        raise ApiProblem(404, "The gateway has no study with this UID.", kind="study-not-found")
    if sop_uid is not None and catalog.files(study_uid, series_uid):
        raise ApiProblem(404, "The series has no instance with this UID.", kind="not-found")
    raise ApiProblem(404, "The study has no series with this UID.", kind="series-not-found")


def _multipart(files: list[StoredFile]) -> StreamingResponse:
    paths = [f.path for f in files]
    # Checked before the first byte is sent: a missing file mid-stream could only cut the
    # response short, which a client cannot tell from a network failure.
    if not all(p.is_file() for p in paths):
        raise ApiProblem(
            404, "An instance is indexed but its file is not in the store.", kind="file-missing"
        )
    boundary = multipart.new_boundary()
    return StreamingResponse(
        multipart.stream_files(paths, boundary), media_type=multipart.content_type(boundary)
    )


def _dicom_json(results: list[dict[str, Any]]) -> Response:
    return Response(
        json.dumps(results, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
        media_type=DICOM_JSON,
    )


def _url(request: Request, path: str) -> str:
    return f"{str(request.base_url).rstrip('/')}{PREFIX}/{path}"


def _prefers_jpeg(accept: str | None) -> bool:
    # PNG unless the client asks for JPEG and not PNG (dicomweb-client sends one type).
    return accept is not None and "image/jpeg" in accept and "image/png" not in accept
