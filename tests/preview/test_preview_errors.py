"""Files with nothing drawable, the placeholder, and picking a series' representative."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from PIL import Image
from preview_factory import PATIENT_ID, PATIENT_NAME, image_dataset, quadrants, save
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import MPEG2MPML, BasicTextSRStorage, RLELossless, generate_uid

from pacs.errors import PacsError
from pacs.preview import (
    PreviewUnavailable,
    pick_representative,
    placeholder_png,
    render_preview,
)


def ct_file(tmp_path, name="ct.dcm", **attributes):
    stored = quadrants(256, 256, (24, 1064, 1164, 2024), "int16")
    ds = image_dataset(stored, RescaleIntercept=-1024, RescaleSlope=1, **attributes)
    return save(ds, tmp_path / name)


def unavailable(path) -> PreviewUnavailable:
    with pytest.raises(PreviewUnavailable) as caught:
        render_preview(path)
    error = caught.value
    assert isinstance(error, PacsError)
    assert error.reason and error.reason in str(error)
    for private in (PATIENT_NAME, "Previewtest", PATIENT_ID, str(path)):
        assert private not in str(error)
    return error


@pytest.mark.parametrize("keep", [0.5, 0.999])
def test_truncated_pixel_data(tmp_path, keep):
    path = ct_file(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    assert "truncated or corrupt" in unavailable(path).reason


def test_truncated_rle(tmp_path):
    pixels = quadrants(64, 64, (1, 2, 3, 4), "uint16")
    ds = image_dataset(pixels)
    ds.compress(RLELossless, pixels, generate_instance_uid=False)
    path = save(ds, tmp_path / "rle.dcm")
    path.write_bytes(path.read_bytes()[:-100])
    assert "truncated or corrupt" in unavailable(path).reason


@pytest.mark.parametrize("keep", [250, 600])  # inside the file meta; inside the dataset
def test_truncated_header(tmp_path, keep):
    path = ct_file(tmp_path)
    path.write_bytes(path.read_bytes()[:keep])
    assert unavailable(path).reason in (
        "the file has no pixel data",
        "the DICOM header is truncated or corrupt",
    )


def test_no_pixel_data(tmp_path):
    ds = Dataset()
    ds.SOPClassUID = BasicTextSRStorage
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = PATIENT_NAME
    ds.Rows = ds.Columns = 16  # claims an image, carries none
    assert unavailable(save(ds, tmp_path / "sr.dcm")).reason == "the file has no pixel data"


def test_unsupported_transfer_syntax(tmp_path):
    ds = image_dataset(np.zeros((16, 16), np.uint8))
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + bytes(64)])
    path = save(ds, tmp_path / "mpeg2.dcm", MPEG2MPML)
    reason = unavailable(path).reason
    assert "MPEG2" in reason
    assert "not supported" in reason or "no decoder" in reason


def test_not_a_dicom_file(tmp_path):
    path = tmp_path / "noise.dcm"
    path.write_bytes(random.Random(1).randbytes(4096))
    assert unavailable(path).reason == "the file is not a DICOM file"


def test_missing_file_is_an_os_error_not_a_preview_problem(tmp_path):
    with pytest.raises(FileNotFoundError):
        render_preview(tmp_path / "gone.dcm")


@pytest.mark.parametrize("size", [128, 512])
def test_placeholder_is_a_grey_png_with_text(size):
    image = Image.open(io.BytesIO(placeholder_png("Preview not available", size)))
    assert (image.format, image.size) == ("PNG", (size, size))
    pixels = np.asarray(image.convert("L"))
    assert np.median(pixels) == 176  # plain grey background
    assert pixels.min() < 100  # and some dark text on it
    assert pixels[: size // 5].std() == 0  # text stays in the middle


def test_placeholder_wraps_a_long_reason():
    data = placeholder_png("pixel data encoded as MPEG2 Main Profile is not supported", 128)
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("L"))
    assert pixels[:, :3].std() == 0 and pixels[:, -3:].std() == 0  # nothing cut at the edges


def series_files(tmp_path, numbers):
    paths = []
    for k, number in enumerate(numbers):
        attrs = {} if number is None else {"InstanceNumber": number}
        paths.append(ct_file(tmp_path, f"{k:02d}.dcm", **attrs))
    return paths


def test_pick_representative_is_the_middle_instance_number(tmp_path):
    paths = series_files(tmp_path, [5, 1, 4, 2, 3])
    assert pick_representative(paths) == paths[4]  # InstanceNumber 3
    assert pick_representative(paths[:4]) == paths[3]  # 1, 2, 4, 5: the lower middle, 2


def test_pick_representative_skips_what_is_not_an_image(tmp_path):
    paths = series_files(tmp_path, [1, 2, 3])
    noise = tmp_path / "noise.dcm"
    noise.write_bytes(b"not dicom at all")
    report = Dataset()
    report.SOPClassUID = BasicTextSRStorage
    report.SOPInstanceUID = generate_uid()
    report.InstanceNumber = 2
    sr = save(report, tmp_path / "sr.dcm")
    assert pick_representative([noise, sr, *paths, tmp_path / "missing.dcm"]) == paths[1]


def test_pick_representative_without_instance_numbers_orders_by_name(tmp_path):
    paths = series_files(tmp_path, [None, None, None])
    assert pick_representative(list(reversed(paths))) == paths[1]


def test_pick_representative_of_nothing(tmp_path):
    with pytest.raises(PreviewUnavailable, match="no readable image"):
        pick_representative([])
