"""Grey-level and colour semantics of render_preview on native (uncompressed) files."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from preview_factory import (
    BLANK_STD,
    assert_colour_quadrants,
    colour_quadrants,
    decode_png,
    quadrant_means,
    quadrants,
    write_image,
)
from pydicom.dataset import Dataset
from pydicom.pixels import convert_color_space

from pacs.preview import render_preview


def linear_window(value: float, center: float, width: float) -> float:
    """PS3.3 C.11.2.1.2.1 LINEAR window onto 0..255, the reference for the checks."""
    unit = (value - (center - 0.5)) / (width - 1) + 0.5
    return 255 * min(max(unit, 0.0), 1.0)


def test_ct_rescale_then_first_window(tmp_path):
    # Stored values are HU + 1024 in signed 16 bits; HU -1000 / 40 / 140 / 1000.
    stored = quadrants(256, 320, (24, 1064, 1164, 2024), "int16")
    stored[:8, :8] = -2000  # CBCT-style padding outside the field of view
    path = write_image(
        tmp_path / "ct.dcm",
        stored,
        RescaleIntercept=-1024,
        RescaleSlope=1,
        WindowCenter=[40, 400],  # several windows: the first is the default view
        WindowWidth=[400, 2000],
    )
    image = decode_png(render_preview(path))
    assert image.shape == (256, 320)
    assert image.std() > BLANK_STD
    air, soft, brighter, bone = quadrant_means(image)
    assert air == 0  # below the window
    assert bone == 255  # above the window
    assert soft == pytest.approx(linear_window(40, 40, 400), abs=1)
    assert brighter == pytest.approx(linear_window(140, 40, 400), abs=1)
    assert image[:8, :8].max() == 0


def test_slope_and_intercept_are_applied_before_the_window(tmp_path):
    # 12 bits stored; modality values = 0.5 * stored + 10.
    stored = quadrants(128, 128, (100, 500, 700, 4000), "uint16")
    path = write_image(
        tmp_path / "slope.dcm",
        stored,
        bits_stored=12,
        RescaleSlope=0.5,
        RescaleIntercept=10,
        WindowCenter=260,
        WindowWidth=200,
    )
    values = [0.5 * v + 10 for v in (100, 500, 700, 4000)]
    image = decode_png(render_preview(path))
    expected = [linear_window(v, 260, 200) for v in values]
    assert quadrant_means(image) == pytest.approx(expected, abs=1)


def test_monochrome1_highest_stored_value_renders_dark(tmp_path):
    stored = quadrants(128, 128, (4000, 500, 500, 4000), "uint16")
    path = write_image(tmp_path / "m1.dcm", stored, photometric="MONOCHROME1", bits_stored=12)
    high, low, _, _ = quadrant_means(decode_png(render_preview(path)))
    assert high == 0
    assert low == 255


def test_monochrome1_with_window_is_inverted_after_windowing(tmp_path):
    stored = quadrants(128, 128, (100, 1000, 2000, 4000), "uint16")
    path = write_image(
        tmp_path / "m1w.dcm",
        stored,
        photometric="MONOCHROME1",
        bits_stored=12,
        WindowCenter=1500,
        WindowWidth=1000,
    )
    means = quadrant_means(decode_png(render_preview(path)))
    expected = [255 - linear_window(v, 1500, 1000) for v in (100, 1000, 2000, 4000)]
    assert means == pytest.approx(expected, abs=1)


def test_8_bit_without_window_stretches_min_to_max(tmp_path):
    stored = quadrants(128, 128, (10, 100, 200, 200), "uint8")
    image = decode_png(render_preview(write_image(tmp_path / "u8.dcm", stored)))
    low, mid, high, _ = quadrant_means(image)
    assert (low, high) == (0, 255)
    assert mid == pytest.approx(255 * 90 / 190, abs=1)


def test_auto_contrast_ignores_a_few_hot_pixels(tmp_path):
    stored = quadrants(200, 200, (1000, 1500, 2000, 2000), "uint16")
    stored[::50, ::50] = 4095  # 16 hot pixels: they must not squash the real contrast
    image = decode_png(render_preview(write_image(tmp_path / "hot.dcm", stored, bits_stored=12)))
    low, mid, high, _ = quadrant_means(image)
    assert low == pytest.approx(0, abs=1)
    assert mid == pytest.approx(127.5, abs=2)
    assert high == pytest.approx(255, abs=1)


def test_16_bit_ramp_keeps_every_grey_level(tmp_path):
    # Integer arithmetic before scaling to 8 bits shows as bands: missing levels, jumps.
    ramp = np.tile(np.linspace(0, 65535, 1024).astype(np.uint16), (16, 1))
    path = write_image(tmp_path / "ramp.dcm", ramp, WindowCenter=32768, WindowWidth=65536)
    row = decode_png(render_preview(path))[8].astype(int)
    assert np.all(np.diff(row) >= 0)
    assert np.diff(row).max() <= 1
    assert len(np.unique(row)) == 256


def test_voi_lut_sequence_takes_precedence_over_the_window(tmp_path):
    stored = quadrants(64, 64, (0, 1024, 2048, 4095), "uint16")
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 16]
    item.LUTData = (65535 - 16 * np.arange(4096)).astype(np.uint16).tobytes()  # inverting
    path = write_image(
        tmp_path / "voilut.dcm",
        stored,
        bits_stored=12,
        VOILUTSequence=[item],
        WindowCenter=2048,
        WindowWidth=4096,
    )
    means = quadrant_means(decode_png(render_preview(path)))
    expected = [255 * (65535 - 16 * v) / 65535 for v in (0, 1024, 2048, 4095)]
    assert means == pytest.approx(expected, abs=1)


def test_window_that_hides_everything_falls_back_to_auto_contrast(tmp_path):
    stored = quadrants(64, 64, (100, 200, 300, 400), "uint16")
    path = write_image(tmp_path / "w.dcm", stored, WindowCenter=30000, WindowWidth=10)
    image = decode_png(render_preview(path))
    assert image.std() > BLANK_STD
    assert quadrant_means(image)[0] == 0
    assert quadrant_means(image)[3] == 255


def test_rgb(tmp_path):
    path = write_image(tmp_path / "rgb.dcm", colour_quadrants(), photometric="RGB")
    image = decode_png(render_preview(path))
    assert_colour_quadrants(image, tolerance=0.5)


def test_ybr_full_is_converted_to_rgb(tmp_path):
    ybr = convert_color_space(colour_quadrants(), "RGB", "YBR_FULL")
    path = write_image(tmp_path / "ybr.dcm", ybr, photometric="YBR_FULL")
    assert_colour_quadrants(decode_png(render_preview(path)), tolerance=3)


def test_palette_color(tmp_path):
    indices = np.tile(np.arange(256, dtype=np.uint8), (32, 1))
    ramp = np.arange(256, dtype=np.uint16) * 257
    path = write_image(
        tmp_path / "palette.dcm",
        indices,
        photometric="PALETTE COLOR",
        RedPaletteColorLookupTableDescriptor=[256, 0, 16],
        GreenPaletteColorLookupTableDescriptor=[256, 0, 16],
        BluePaletteColorLookupTableDescriptor=[256, 0, 16],
        RedPaletteColorLookupTableData=ramp.tobytes(),
        GreenPaletteColorLookupTableData=np.zeros(256, np.uint16).tobytes(),
        BluePaletteColorLookupTableData=ramp[::-1].copy().tobytes(),
    )
    image = decode_png(render_preview(path))
    assert image.shape == (32, 256, 3)
    assert tuple(image[0, 0]) == (0, 0, 255)
    assert tuple(image[0, 255]) == (255, 0, 0)
    assert image[:, :, 1].max() == 0


def frames_with_levels(levels: list[int]) -> np.ndarray:
    frames = np.empty((len(levels), 64, 80), dtype=np.uint16)
    for frame, level in zip(frames, levels, strict=True):
        frame[:] = level
        frame[20:40, 30:50] = 1000  # same marker everywhere: only the level differs
    return frames


def test_multi_frame_renders_the_middle_frame(tmp_path):
    levels = [100, 200, 300, 400, 500]
    path = write_image(
        tmp_path / "mf.dcm",
        frames_with_levels(levels),
        frames=True,
        bits_stored=12,
        WindowCenter=500,
        WindowWidth=1000,
    )
    image = decode_png(render_preview(path))
    assert image.shape == (64, 80)
    assert image.std() > BLANK_STD
    assert np.median(image) == pytest.approx(linear_window(300, 500, 1000), abs=1)
    assert image[30, 40] == 255


def test_enhanced_multi_frame_uses_that_frames_functional_groups(tmp_path):
    levels = [100, 200, 300, 400, 500]

    def group(**values: object) -> Dataset:
        item, macro = Dataset(), Dataset()
        for keyword, value in values.items():
            setattr(macro, keyword, value)
        sequence = (
            "FrameVOILUTSequence"
            if "WindowCenter" in values
            else ("PixelValueTransformationSequence")
        )
        setattr(item, sequence, [macro])
        return item

    shared = group(RescaleSlope=2, RescaleIntercept=0, RescaleType="US")
    per_frame = [group(WindowCenter=100 * (i + 1), WindowWidth=2000) for i in range(5)]
    path = write_image(
        tmp_path / "enhanced.dcm",
        frames_with_levels(levels),
        frames=True,
        bits_stored=12,
        SharedFunctionalGroupsSequence=[shared],
        PerFrameFunctionalGroupsSequence=per_frame,
        WindowCenter=5000,  # top-level values the functional groups override
        WindowWidth=10,
    )
    image = decode_png(render_preview(path))
    assert np.median(image) == pytest.approx(linear_window(2 * 300, 300, 2000), abs=1)


@pytest.mark.parametrize(
    ("shape", "max_size", "expected"),
    [
        ((400, 600), 128, (85, 128)),
        ((1300, 1000), 128, (128, 98)),
        ((400, 600), None, (400, 600)),
        ((400, 600), 1024, (400, 600)),  # never enlarged
        ((2000, 1500), 1024, (1024, 768)),
    ],
)
def test_longest_side_is_bounded(tmp_path, shape, max_size, expected):
    stored = np.tile(np.linspace(0, 4095, shape[1]).astype(np.uint16), (shape[0], 1))
    path = write_image(tmp_path / "size.dcm", stored, bits_stored=12)
    image = decode_png(render_preview(path, max_size=max_size))
    assert image.shape == expected
    assert image.std() > BLANK_STD


def test_jpeg_output(tmp_path):
    stored = quadrants(200, 300, (0, 1000, 2000, 4000), "uint16")
    path = write_image(tmp_path / "j.dcm", stored, bits_stored=12)
    image = Image.open(io.BytesIO(render_preview(path, max_size=128, format="JPEG")))
    assert (image.format, image.size, image.mode) == ("JPEG", (128, 85), "L")
    with pytest.raises(ValueError, match="format"):
        render_preview(path, format="GIF")  # type: ignore[arg-type]
