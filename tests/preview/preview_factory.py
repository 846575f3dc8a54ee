"""Synthetic DICOM images for the preview tests: invented people, pixels built to measure."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

PATIENT_NAME = "Previewtest^Invented"
PATIENT_ID = "PREVIEW-TEST-0001"
BLANK_STD = 5.0  # a rendered image with less spread than this counts as blank


def image_dataset(
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    frames: bool = False,
    **attributes: object,
) -> Dataset:
    """A Secondary Capture dataset holding `pixels` natively.

    `pixels` is (rows, cols) or (rows, cols, 3); with `frames`, a leading frame axis.
    The dtype decides BitsAllocated and PixelRepresentation.
    """
    ds = Dataset()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.Modality = "OT"
    frame_shape = pixels.shape[1:] if frames else pixels.shape
    if frames:
        ds.NumberOfFrames = pixels.shape[0]
    ds.Rows, ds.Columns = frame_shape[:2]
    ds.SamplesPerPixel = 3 if len(frame_shape) == 3 else 1
    if ds.SamplesPerPixel == 3:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 8 * pixels.dtype.itemsize
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def save(ds: Dataset, path: Path, syntax: str | None = None) -> Path:
    """Write `ds` in the DICOM file format; its own transfer syntax if it was compressed."""
    meta = getattr(ds, "file_meta", None) or FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = syntax or meta.get("TransferSyntaxUID") or ExplicitVRLittleEndian
    ds.file_meta = meta
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_image(path: Path, pixels: np.ndarray, **kwargs: object) -> Path:
    return save(image_dataset(pixels, **kwargs), path)  # type: ignore[arg-type]


def decode_png(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return np.asarray(image)


def quadrants(rows: int, cols: int, values: tuple[int, int, int, int], dtype: str) -> np.ndarray:
    """Top-left, top-right, bottom-left, bottom-right filled with the four values."""
    image = np.empty((rows, cols), dtype=dtype)
    r, c = rows // 2, cols // 2
    image[:r, :c], image[:r, c:], image[r:, :c], image[r:, c:] = values
    return image


def quadrant_means(image: np.ndarray) -> list[float]:
    """Mean of the inner half of each quadrant: clear of edges blurred by resampling."""
    rows, cols = image.shape[:2]
    r, c = rows // 4, cols // 4
    centres = [(r, c), (r, 3 * c), (3 * r, c), (3 * r, 3 * c)]
    return [
        float(image[y - r // 2 : y + r // 2, x - c // 2 : x + c // 2].mean()) for y, x in centres
    ]


def colour_quadrants() -> np.ndarray:
    rgb = np.zeros((96, 128, 3), dtype=np.uint8)
    rgb[:48, :64] = (255, 0, 0)
    rgb[:48, 64:] = (0, 255, 0)
    rgb[48:, :64] = (0, 0, 255)
    rgb[48:, 64:] = (255, 255, 255)
    return rgb


def assert_colour_quadrants(image: np.ndarray, tolerance: float) -> None:
    assert image.shape == (96, 128, 3)
    expected = colour_quadrants()
    for rows, cols in ((slice(8, 40), slice(8, 56)), (slice(56, 88), slice(72, 120))):
        diff = np.abs(image[rows, cols].astype(int) - expected[rows, cols].astype(int))
        assert diff.mean() < tolerance
    assert image.std() > BLANK_STD
