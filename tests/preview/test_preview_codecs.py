"""Compressed transfer syntaxes: lossless ones must draw exactly what the native file draws.

Encoders: RLE by pydicom itself, JPEG 2000 by pylibjpeg-openjpeg, JPEG-LS by pyjpegls,
JPEG Lossless (Process 14 SV1) by GDCM, JPEG baseline by Pillow. A test whose encoder
is not installed is skipped, and says which package it needs.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from preview_factory import (
    BLANK_STD,
    assert_colour_quadrants,
    colour_quadrants,
    decode_png,
    image_dataset,
    save,
)
from pydicom import dcmread
from pydicom.encaps import encapsulate
from pydicom.pixels import get_encoder
from pydicom.uid import (
    JPEG2000,
    UID,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from pacs.preview import render_preview


def phantom_12bit(rows: int = 120, cols: int = 160) -> np.ndarray:
    y, x = np.mgrid[0:rows, 0:cols]
    image = 400 + 12 * x + 5 * y
    image[30:70, 40:90] += 1500
    image[80:100, 100:140] = 4000
    return image.astype(np.uint16)


def native(tmp_path: Path, pixels: np.ndarray, **kwargs: object) -> Path:
    return save(image_dataset(pixels, **kwargs), tmp_path / "native.dcm")  # type: ignore[arg-type]


def compressed(
    tmp_path: Path, pixels: np.ndarray, syntax: UID, plugin: str, **kwargs: object
) -> Path:
    encoder = get_encoder(syntax)
    if plugin not in encoder.available_plugins:
        pytest.skip(f"no {plugin} encoder for {syntax.name} installed")
    ds = image_dataset(pixels, **kwargs)  # type: ignore[arg-type]
    options = {"j2k_psnr": [60]} if syntax == JPEG2000 else {}
    ds.compress(syntax, pixels, encoding_plugin=plugin, generate_instance_uid=False, **options)
    return save(ds, tmp_path / f"{syntax.name}.dcm")


GREY_12 = {"bits_stored": 12, "WindowCenter": 2000, "WindowWidth": 3800}


@pytest.mark.parametrize(
    ("syntax", "plugin"),
    [
        (RLELossless, "pydicom"),
        (JPEG2000Lossless, "pylibjpeg"),
        (JPEGLSLossless, "pyjpegls"),
    ],
)
def test_lossless_syntax_renders_like_native(tmp_path, syntax, plugin):
    pixels = phantom_12bit()
    path = compressed(tmp_path, pixels, syntax, plugin, **GREY_12)
    assert dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID == syntax
    image = decode_png(render_preview(path))
    assert image.std() > BLANK_STD
    np.testing.assert_array_equal(
        image, decode_png(render_preview(native(tmp_path, pixels, **GREY_12)))
    )


def test_jpeg_2000_lossy_is_close_to_native(tmp_path):
    pixels = phantom_12bit()
    image = decode_png(
        render_preview(compressed(tmp_path, pixels, JPEG2000, "pylibjpeg", **GREY_12))
    )
    reference = decode_png(render_preview(native(tmp_path, pixels, **GREY_12)))
    assert np.abs(image.astype(int) - reference).mean() < 2


def gdcm_transcode(source: Path, target: Path, syntax: UID) -> Path:
    gdcm = pytest.importorskip("gdcm", reason="JPEG Lossless encoding needs python-gdcm")
    reader = gdcm.ImageReader()
    reader.SetFileName(str(source))
    assert reader.Read()
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.GetTSType(str(syntax))))
    change.SetInput(reader.GetImage())
    assert change.Change()
    writer = gdcm.ImageWriter()
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    writer.SetFileName(str(target))
    assert writer.Write()
    return target


def test_jpeg_lossless_sv1_renders_like_native(tmp_path):
    pixels = phantom_12bit()
    source = native(tmp_path, pixels, **GREY_12)
    path = gdcm_transcode(source, tmp_path / "jpeg-lossless.dcm", JPEGLosslessSV1)
    assert dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID == JPEGLosslessSV1
    np.testing.assert_array_equal(
        decode_png(render_preview(path)), decode_png(render_preview(source))
    )


def jpeg_baseline(tmp_path: Path, pixels: np.ndarray, photometric: str, **pillow: object) -> Path:
    """Encode with Pillow and encapsulate, as a modality writing JPEG baseline would."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=95, **pillow)
    ds = image_dataset(pixels, photometric=photometric)
    ds.PixelData = encapsulate([buffer.getvalue()])
    ds["PixelData"].VR = "OB"
    ds.LossyImageCompression = "01"
    return save(ds, tmp_path / f"jpeg-{photometric}.dcm", JPEGBaseline8Bit)


def test_jpeg_baseline_monochrome(tmp_path):
    pixels = (phantom_12bit() >> 4).astype(np.uint8)
    image = decode_png(render_preview(jpeg_baseline(tmp_path, pixels, "MONOCHROME2")))
    reference = decode_png(render_preview(native(tmp_path, pixels)))
    assert image.std() > BLANK_STD
    assert np.abs(image.astype(int) - reference).mean() < 3


def test_jpeg_baseline_ybr_full_422_is_converted_to_rgb(tmp_path):
    # Pillow's subsampling=1 is 4:2:2, which is what YBR_FULL_422 says about the stream.
    path = jpeg_baseline(tmp_path, colour_quadrants(), "YBR_FULL_422", subsampling=1)
    assert_colour_quadrants(decode_png(render_preview(path)), tolerance=6)


def test_rle_rgb(tmp_path):
    path = compressed(tmp_path, colour_quadrants(), RLELossless, "pydicom", photometric="RGB")
    assert_colour_quadrants(decode_png(render_preview(path)), tolerance=0.5)


def test_rle_multi_frame_renders_the_middle_frame(tmp_path):
    frames = np.stack([phantom_12bit() // (k + 1) for k in range(5)])
    path = compressed(tmp_path, frames, RLELossless, "pydicom", frames=True, **GREY_12)
    expected = render_preview(native(tmp_path, frames[2], **GREY_12))
    np.testing.assert_array_equal(decode_png(render_preview(path)), decode_png(expected))
