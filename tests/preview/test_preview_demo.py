"""Every series of the demo studies gets a sensible preview and thumbnail."""

from __future__ import annotations

import demo_studies
import numpy as np
import pytest
from preview_factory import decode_png
from pydicom import dcmread
from pydicom.uid import RLELossless

from pacs.preview import PreviewCache, pick_representative, render_preview


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    return demo_studies.generate(tmp_path_factory.mktemp("demo"), ct_slices=20)


def all_series(catalog):
    return [(study, series) for study in catalog.studies for series in study.series]


def test_demo_covers_what_previews_must_cope_with(catalog):
    kinds = {(s.modality, s.photometric, s.transfer_syntax_uid) for _, s in all_series(catalog)}
    assert ("CR", "MONOCHROME1", demo_studies.ExplicitVRLittleEndian) in kinds
    assert ("MR", "MONOCHROME2", RLELossless) in kinds
    assert {"CT", "PX", "IO"} <= {modality for modality, _, _ in kinds}


def test_every_series_renders_a_non_blank_preview_of_the_right_size(catalog):
    for study, series in all_series(catalog):
        path = pick_representative(series.files)
        header = dcmread(path, stop_before_pixels=True)
        longest = max(header.Rows, header.Columns)
        image = decode_png(render_preview(path, max_size=1024))
        where = f"{study.key} series {series.number}"
        assert max(image.shape) == min(longest, 1024), where
        assert image.shape[0] / image.shape[1] == pytest.approx(
            header.Rows / header.Columns, rel=0.01
        ), where
        assert image.std() > 20, where


def test_every_series_gets_cached_thumbnails(catalog, tmp_path):
    cache = PreviewCache(tmp_path / "previews")
    for study, series in all_series(catalog):
        thumbnail = cache.get_or_render(
            study.study_uid, series.series_uid, series.files, "thumbnail"
        )
        image = decode_png(thumbnail.read_bytes())
        assert max(image.shape) == 128
        assert image.std() > 10, f"{study.key} series {series.number}"


def test_cr_monochrome1_shows_the_skull_bright(catalog):
    series = catalog.study("lukasiewicz-cr-2020").series[0]
    image = decode_png(render_preview(series.files[0], max_size=256)).astype(float)
    rows, cols = image.shape
    corners = np.concatenate([image[:10, :10].ravel(), image[-10:, -10:].ravel()])
    skull_ring = image[rows // 2, int(cols * 0.12) : int(cols * 0.2)]  # the bright rim
    assert skull_ring.max() > corners.mean() + 100


def test_ct_middle_slice_with_its_window(catalog):
    series = catalog.study("dubois-ext-cbct-2023").series[0]
    path = pick_representative(series.files)
    assert dcmread(path, stop_before_pixels=True).InstanceNumber == 10  # of 20
    image = decode_png(render_preview(path))
    assert image.shape == (512, 512)
    assert image[:5, :5].max() == 0  # outside the reconstruction circle: -3024 HU
    # The demo CT's window is centre 1000, width 4000 (HU -1000..3000).
    soft_tissue = np.median(image[246:266, 246:266])  # 40 HU in the middle of the head
    assert soft_tissue == pytest.approx(255 * (40 + 1000) / 4000, abs=2)
    enamel = np.percentile(image, 99.9)  # the brightest structure, 2500 HU
    assert enamel == pytest.approx(255 * (2500 + 1000) / 4000, abs=10)
