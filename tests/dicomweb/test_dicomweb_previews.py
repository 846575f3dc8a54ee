"""Preview and thumbnail endpoints over demo studies filed into the store."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread

from pacs.preview import pick_representative

DEMO_KEYS = ("muller-io-2021", "lukasiewicz-cr-2020", "dubois-ext-mr-2024", "dubois-ext-cbct-2023")


def png(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return np.asarray(image)


@pytest.fixture
def filed(make_client, small_catalog, file_study):
    client, gateway, _ = make_client(preview_max_age=600)
    for key in DEMO_KEYS:
        file_study(gateway, small_catalog.study(key))
    return client, gateway


def test_every_series_has_a_non_blank_preview_and_thumbnail_of_the_right_size(filed, small_catalog):
    client, _ = filed
    for key in DEMO_KEYS:
        study = small_catalog.study(key)
        for series in study.series:
            header = dcmread(pick_representative(series.files), stop_before_pixels=True)
            longest = max(header.Rows, header.Columns)
            base = f"/api/v1/studies/{study.study_uid}/series/{series.series_uid}"
            for kind, size in (("preview", min(longest, 1024)), ("thumbnail", 128)):
                response = client.get(f"{base}/{kind}.png")
                where = f"{key} series {series.number} {kind}"
                assert response.status_code == 200, where
                assert response.headers["content-type"] == "image/png"
                assert response.headers["cache-control"] == "private, max-age=600"
                assert "x-preview-unavailable" not in response.headers
                image = png(response.content)
                assert max(image.shape[:2]) == size, where
                assert image.std() > 10, where


def test_second_request_is_304_and_not_rendered_again(filed, small_catalog):
    client, gateway = filed
    study = small_catalog.study("muller-io-2021")
    url = f"/api/v1/studies/{study.study_uid}/series/{study.series[0].series_uid}/preview.png"
    first = client.get(url)
    etag = first.headers["etag"]
    cached = gateway.settings.data_dir / "previews" / study.study_uid / study.series[0].series_uid
    assert (cached / "preview.png").read_bytes() == first.content
    mtime = (cached / "preview.png").stat().st_mtime_ns

    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    assert client.get(url, headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304
    plain = client.get(url)
    assert plain.status_code == 200 and plain.content == first.content
    assert (cached / "preview.png").stat().st_mtime_ns == mtime  # served, not re-rendered


def test_study_preview_is_its_first_series(filed, small_catalog):
    client, _ = filed
    study = small_catalog.study("dubois-ext-mr-2024")
    first = min(study.series, key=lambda s: s.number)
    whole = client.get(f"/api/v1/studies/{study.study_uid}/preview.png")
    series = client.get(f"/api/v1/studies/{study.study_uid}/series/{first.series_uid}/preview.png")
    assert whole.status_code == 200 and whole.content == series.content
    assert whole.headers["etag"] == series.headers["etag"]


def test_broken_series_gets_the_placeholder_not_a_500(filed, small_catalog, caplog):
    client, gateway = filed
    study = small_catalog.study("muller-io-2021")
    series = study.series[0]
    for path in gateway.index.instance_paths(study.study_uid):
        if path.parent.name == series.series_uid:
            path.write_bytes(path.read_bytes()[:3000])  # pixel data cut short
    url = f"/api/v1/studies/{study.study_uid}/series/{series.series_uid}/thumbnail.png"
    with caplog.at_level(logging.WARNING, logger="gateway.api.previews"):
        response = client.get(url)
    assert response.status_code == 200
    assert response.headers["x-preview-unavailable"]
    assert "no-cache" in response.headers["cache-control"]
    assert png(response.content).shape[:2] == (128, 128)
    logged = [r.getMessage() for r in caplog.records if r.name == "gateway.api.previews"]
    assert logged and "No preview" in logged[0]
    patient = small_catalog.patient(study.patient_id)
    assert patient.patient_id not in caplog.text and patient.name not in caplog.text
    # Known broken now: answered from the cache's note, still a placeholder.
    again = client.get(url)
    assert again.status_code == 200 and again.headers["x-preview-unavailable"]


def test_unknown_study_or_series_is_404_and_bad_uid_is_422(filed, small_catalog):
    client, _ = filed
    study = small_catalog.study("muller-io-2021")
    for url, kind in (
        ("/api/v1/studies/1.2.3/series/1.2.4/preview.png", "study-not-found"),
        (f"/api/v1/studies/{study.study_uid}/series/1.2.4/thumbnail.png", "series-not-found"),
        ("/api/v1/studies/1.2.3/preview.png", "study-not-found"),
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith(kind)
    for url in (
        "/api/v1/studies/1.2.x/series/1.2.4/preview.png",
        f"/api/v1/studies/{study.study_uid}/series/..%2F..%2Fetc/preview.png",
        "/api/v1/studies/1.02.3/preview.png",
    ):
        response = client.get(url)
        assert response.status_code in (404, 422), url
        assert response.headers["content-type"] == "application/problem+json"
    assert client.get("/api/v1/studies/1.2.x/preview.png").status_code == 422


def test_study_detail_lists_previews_and_links(filed, small_catalog):
    client, _ = filed
    study = small_catalog.study("dubois-ext-mr-2024")
    body = client.get(f"/api/v1/studies/{study.study_uid}").json()
    base = f"/api/v1/studies/{study.study_uid}"
    assert body["links"]["preview"] == f"{base}/preview.png"
    assert {p["series_uid"]: (p["preview"], p["thumbnail"]) for p in body["previews"]} == {
        s.series_uid: (
            f"{base}/series/{s.series_uid}/preview.png",
            f"{base}/series/{s.series_uid}/thumbnail.png",
        )
        for s in study.series
    }
    for entry in body["previews"]:
        assert client.get(entry["thumbnail"]).status_code == 200


def test_frame_limit_setting_applies_to_previews_and_dicomweb_renders(
    make_client, small_catalog, file_study, caplog
):
    # 1 KiB: every demo image declares more, so both routes must refuse from the header.
    client, gateway, _ = make_client(preview_max_frame_bytes=1024)
    study = small_catalog.study("muller-io-2021")
    file_study(gateway, study)
    series = study.series[0]
    instance = series.instances[0].sop_instance_uid
    base = f"studies/{study.study_uid}/series/{series.series_uid}"
    with caplog.at_level(logging.WARNING):
        preview = client.get(f"/api/v1/{base}/preview.png")
        rendered = client.get(f"/dicomweb/{base}/instances/{instance}/rendered")
    for response in (preview, rendered):
        assert response.status_code == 200
        png(response.content)
        reason = response.headers["x-preview-unavailable"]
        assert "too large to preview" in reason and "1,024 bytes limit" in reason
    assert sum("too large to preview" in r.getMessage() for r in caplog.records) == 2
    # Not remembered as a broken series: a larger limit draws it.
    roomy, roomy_gateway, _ = make_client()
    file_study(roomy_gateway, study)
    assert "x-preview-unavailable" not in roomy.get(f"/api/v1/{base}/preview.png").headers
