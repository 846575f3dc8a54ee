"""Hostile DICOM images for the preview guard's tests and the hostile drill.

Every file is a valid Part 10 file whose elements have consistent lengths (a PACS stores it,
a Storage SCP accepts it), but whose image attributes lie: a size bomb that decodes to
gigabytes from a few MB of RLE, frames or rows the pixel data cannot hold, BitsAllocated 0, a
negative NumberOfFrames, RLE segments cut short, JPEG and JPEG 2000 codestreams that declare
far more pixels than the header around them. One invented patient, one study, one series
per case, so each case has its own preview.

    cases = hostile_files(folder)    # {case name: path}
    GOOD_LARGE                       # the one case a preview must be drawn for
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    RLELossless,
    SecondaryCaptureImageStorage,
)

PATIENT_ID = "HOSTILE-0001"
PATIENT_NAME = "Hostile^Invented"
STUDY_UID = "1.2.826.0.1.3680043.8.498.7401"
# Large but within the default 64 MiB frame limit: drawn, from a strided decode.
GOOD_LARGE = "large but allowed (5000 x 5000 RLE)"
SIZE_BOMB = "size bomb (16000 x 16000 16-bit RLE)"


def hostile_files(folder: Path, *, study_uid: str = STUDY_UID) -> dict[str, Path]:
    """Write every case into `folder`; each is its own series of `study_uid`."""
    folder.mkdir(parents=True, exist_ok=True)
    cases: dict[str, Dataset] = {
        SIZE_BOMB: _rle_zeros(16000, 16000, bits=16),
        "wide bomb (65535 x 65535 8-bit RLE)": _rle_zeros(65535, 65535, bits=8, quick=True),
        GOOD_LARGE: _rle_zeros(5000, 5000, bits=16),
        "rows x columns beyond the pixel data": _native(4096, 4096, stored=(64, 64)),
        "BitsAllocated 0": _native(64, 64, BitsAllocated=0),
        "Rows 0": _native(64, 64, Rows=0),
        "negative NumberOfFrames": _native(64, 64, NumberOfFrames=-5),
        "huge NumberOfFrames (native)": _native(64, 64, NumberOfFrames=2**31 - 1),
        "huge NumberOfFrames (RLE)": _rle_zeros(64, 64, bits=16, NumberOfFrames=2**31 - 1),
        "SamplesPerPixel 9": _native(64, 64, SamplesPerPixel=9),
        "truncated RLE segments": _rle_truncated(512, 512),
        "JPEG 2000 codestream larger than its header": _j2k_lying(64, 64, claimed=12000),
        "JPEG codestream larger than its header": _jpeg_lying(64, 64, claimed=60000),
    }
    paths = {}
    for number, (name, ds) in enumerate(cases.items(), start=1):
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = f"{study_uid}.{number}"
        ds.SeriesNumber = number
        ds.SOPInstanceUID = f"{study_uid}.{number}.1"
        ds.SeriesDescription = name[:64]
        paths[name] = _save(ds, folder / f"case-{number:02d}.dcm")
    return paths


def _base(rows: int, columns: int, bits: int) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = "19700101"
    ds.StudyDate = "20240101"
    ds.StudyTime = "120000"
    ds.AccessionNumber = "HOSTILE1"
    ds.StudyID = "1"
    ds.Modality = "OT"
    ds.InstanceNumber = 1
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    return ds


def _native(
    rows: int, columns: int, *, stored: tuple[int, int] | None = None, **attributes: object
) -> Dataset:
    """A native 16-bit image whose attributes are overridden after the pixel data is set."""
    ds = _base(rows, columns, 16)
    shape = stored or (rows, columns)
    ds.PixelData = np.arange(shape[0] * shape[1], dtype="<u2").tobytes()
    ds.file_meta = _meta(ExplicitVRLittleEndian)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def _rle_zeros(
    rows: int, columns: int, *, bits: int, quick: bool = False, **attributes: object
) -> Dataset:
    """An RLE frame of zeros written by hand: 2 bytes per 128 pixels per byte plane.

    `quick` writes a single run per plane (decoders then fail or pad): a bomb that stays
    small on disk whatever its declared size.
    """
    ds = _base(rows, columns, bits)
    planes = bits // 8
    pixels = rows * columns
    if quick:
        segment = b"\x81\x00" * 64
    else:
        full, rest = divmod(pixels, 128)
        # PackBits: -127 (0x81) repeats the next byte 128 times; 1 - n times for -n.
        segment = b"\x81\x00" * full + (bytes([257 - rest, 0]) if rest > 1 else b"\x00\x00" * rest)
    if len(segment) % 2:
        segment += b"\x00"
    header = struct.pack("<I", planes) + b"".join(
        struct.pack("<I", 64 + i * len(segment)) for i in range(planes)
    )
    frame = header.ljust(64, b"\x00") + segment * planes
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    ds.file_meta = _meta(RLELossless)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def _rle_truncated(rows: int, columns: int) -> Dataset:
    """An RLE frame whose second segment's offset points past the end of the frame."""
    ds = _base(rows, columns, 16)
    segment = b"\x81\x00" * 16
    header = struct.pack("<III", 2, 64, 64 + 10 * 1024 * 1024)
    ds.PixelData = encapsulate([header.ljust(64, b"\x00") + segment])
    ds["PixelData"].VR = "OB"
    ds.file_meta = _meta(RLELossless)
    return ds


def _j2k_lying(rows: int, columns: int, *, claimed: int) -> Dataset:
    """A JPEG 2000 frame whose SIZ marker says `claimed` x `claimed`: decoders trust it."""
    from openjpeg import encode

    ds = _base(rows, columns, 8)
    stream = bytearray(encode(np.zeros((rows, columns), np.uint8), photometric_interpretation=2))
    at = stream.find(b"\xff\x4f\xff\x51")
    stream[at + 8 : at + 16] = struct.pack(">II", claimed, claimed)  # Xsiz, Ysiz
    ds.PixelData = encapsulate([bytes(stream)])
    ds["PixelData"].VR = "OB"
    ds.file_meta = _meta(JPEG2000Lossless)
    return ds


def _jpeg_lying(rows: int, columns: int, *, claimed: int) -> Dataset:
    """A baseline JPEG frame whose SOF0 says `claimed` x `claimed`."""
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((rows, columns), np.uint8)).save(buffer, "JPEG")
    stream = bytearray(buffer.getvalue())
    at = stream.find(b"\xff\xc0")
    stream[at + 5 : at + 9] = struct.pack(">HH", claimed, claimed)  # height, width
    ds = _base(rows, columns, 8)
    ds.PixelData = encapsulate([bytes(stream)])
    ds["PixelData"].VR = "OB"
    ds.file_meta = _meta(JPEGBaseline8Bit)
    return ds


def _meta(syntax: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = syntax
    return meta


def _save(ds: Dataset, path: Path) -> Path:
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(path, enforce_file_format=True)
    return path
