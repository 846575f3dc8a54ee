"""Limits that keep a hostile or huge DICOM file from taking the process down.

Invariants:
- Nothing is decoded before the header's declared sizes (rows x columns x samples x bits
  per frame, and frames x that against the file's size) and, for JPEG-family frames, the
  codestream's own size have been checked: a file declaring
  more than `max_frame_bytes` per frame, or attributes no real image has (BitsAllocated 0,
  a negative NumberOfFrames), is refused with PreviewRefused, whose reason names sizes and
  attributes, never the patient.
- At most `max_renders` decodes run at once per RenderGuard; a caller that cannot get a slot
  within `wait_seconds` gets PreviewBusy instead of holding a thread indefinitely.
- Decoded pixels are reduced (strided) to at most `bound` on the longest side before the
  floating-point display pipeline, which needs about 20 bytes per pixel.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.pixels.utils import _get_jpg_parameters
from pydicom.uid import (
    UID,
    JPEG2000TransferSyntaxes,
    JPEGLSTransferSyntaxes,
    JPEGTransferSyntaxes,
)

from pacs.preview.errors import PreviewUnavailable

MIB = 1024 * 1024
# A 5000 x 6400 16-bit mammogram is 61 MiB: the largest single frames a practice meets.
DEFAULT_MAX_FRAME_BYTES = 64 * MIB
DEFAULT_MAX_RENDERS = 2
DEFAULT_WAIT_SECONDS = 20.0

_VALID_BITS_ALLOCATED = (1, 8, 16, 32, 64)
_VALID_SAMPLES = (1, 3, 4)  # 4: the retired ARGB/CMYK, which pydicom still decodes
_REQUIRED = ("Rows", "Columns", "BitsAllocated")
# Decoders of these allocate by the codestream's own header, not the dataset's.
_CODESTREAM_SYNTAXES = frozenset(
    [*JPEGTransferSyntaxes, *JPEGLSTransferSyntaxes, *JPEG2000TransferSyntaxes]
)
_PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"
# Every encapsulated frame takes at least one 8-byte item header in the file.
_MIN_ENCAPSULATED_FRAME_BYTES = 8


class PreviewRefused(PreviewUnavailable):
    """Not drawn on purpose: the file declares too much, or no slot was free in time.

    Unlike other PreviewUnavailable reasons this one depends on settings and load, so a
    cache must not remember it as a property of the series.
    """


class PreviewBusy(PreviewRefused):
    """Every render slot stayed taken for the whole wait; a retry later can help."""


@dataclass(frozen=True)
class DeclaredImage:
    rows: int
    columns: int
    samples: int
    bits_allocated: int
    frames: int

    @property
    def frame_bytes(self) -> int:
        return (self.rows * self.columns * self.samples * self.bits_allocated + 7) // 8


def check_declared(header: Dataset, file_size: int, max_frame_bytes: int) -> DeclaredImage | None:
    """The image the header declares, or PreviewUnavailable/PreviewRefused saying why not.

    Only the header is read: call this before any pixel data is touched. None when Rows,
    Columns or BitsAllocated is absent: no decoder starts without them, and the decode
    then says what is missing (often that there is no image at all).
    """
    if any(header.get(keyword) in (None, "") for keyword in _REQUIRED):
        return None
    rows = _positive(header, "Rows")
    columns = _positive(header, "Columns")
    bits = _int(header, "BitsAllocated")
    if bits not in _VALID_BITS_ALLOCATED:
        raise PreviewUnavailable(f"BitsAllocated {bits} is not a valid pixel size")
    samples = _int(header, "SamplesPerPixel", default=1)
    if samples not in _VALID_SAMPLES:
        raise PreviewUnavailable(f"SamplesPerPixel {samples} is not a valid value")
    frames = _frames(header)
    image = DeclaredImage(rows, columns, samples, bits, frames)
    if image.frame_bytes > max_frame_bytes:
        raise PreviewRefused(
            f"the image is too large to preview: {columns} x {rows} pixels x {samples} "
            f"samples x {bits} bits is {_mib(image.frame_bytes)} per frame, over the "
            f"{_mib(max_frame_bytes)} limit (preview_max_frame_bytes)"
        )
    syntax = UID(header.file_meta.get("TransferSyntaxUID") or "")
    if syntax and not syntax.is_encapsulated:
        if frames * image.frame_bytes > file_size:
            raise PreviewUnavailable(
                "the pixel data is truncated or corrupt: shorter than its rows, columns "
                "and frames declare"
            )
    elif frames * _MIN_ENCAPSULATED_FRAME_BYTES > file_size:
        raise PreviewUnavailable("NumberOfFrames is larger than the pixel data can hold")
    return image


def check_codestream(f: BinaryIO, header: Dataset, declared: DeclaredImage, index: int) -> None:
    """For JPEG, JPEG-LS and JPEG 2000 frames: the codestream's own size must be the declared
    one. Their decoders allocate what the codestream says, so a 64 x 64 header around a
    12000 x 12000 codestream would otherwise cost its full decode before being found out.

    `f` is positioned at the PixelData element (after a stop_before_pixels read) and is put
    back there. Only the one compressed frame is read.
    """
    syntax = UID(header.file_meta.get("TransferSyntaxUID") or "")
    if syntax not in _CODESTREAM_SYNTAXES:
        return
    start = f.tell()
    try:
        if f.read(4) != _PIXEL_DATA_TAG:
            return  # not at the pixel data (e.g. FloatPixelData): the decoder decides
        f.seek(8, os.SEEK_CUR)  # VR, reserved, undefined length: always explicit VR here
        try:
            frame = get_frame(f, index, number_of_frames=declared.frames)
        except Exception as exc:  # a broken item structure
            raise PreviewUnavailable("the pixel data is truncated or corrupt") from exc
    finally:
        f.seek(start)
    size = codestream_size(frame)
    if size is not None and size != (declared.rows, declared.columns):
        raise PreviewUnavailable(
            f"the compressed image is {size[1]} x {size[0]} pixels, not the {declared.columns} "
            f"x {declared.rows} its header declares"
        )


def codestream_size(frame: bytes) -> tuple[int, int] | None:
    """(rows, columns) a JPEG, JPEG-LS or JPEG 2000 codestream declares; None if not found."""
    if frame[:2] == b"\xff\xd8":
        info = _get_jpg_parameters(frame)
        if "height" in info and "width" in info:
            return int(info["height"]), int(info["width"])
        return None
    # JPEG 2000: SOC then SIZ (possibly inside a JP2 box): Lsiz, Rsiz, Xsiz, Ysiz, XOsiz, YOsiz.
    at = frame.find(b"\xff\x4f\xff\x51", 0, 4096)
    if at < 0 or len(frame) < at + 24:
        return None
    xsiz, ysiz, xosiz, yosiz = struct.unpack(">IIII", frame[at + 8 : at + 24])
    return ysiz - yosiz, xsiz - xosiz


def reduce_to(pixels: np.ndarray, bound: int | None) -> np.ndarray:
    """Every k-th row and column so the longest side is at most `bound` (None: unchanged).

    Striding, not averaging: it keeps the stored integer values that LUTs index by, and the
    result is later shrunk with Lanczos to a size at most half of `bound`.
    """
    if bound is None:
        return pixels
    longest = max(pixels.shape[0], pixels.shape[1])
    if longest <= bound:
        return pixels
    step = -(-longest // bound)
    return np.ascontiguousarray(pixels[::step, ::step])


class RenderGuard:
    """The size limit and the render slots shared by every path that decodes pixels."""

    def __init__(
        self,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        max_renders: int = DEFAULT_MAX_RENDERS,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
    ) -> None:
        if max_frame_bytes < 1 or max_renders < 1 or wait_seconds < 0:
            raise ValueError("max_frame_bytes and max_renders must be at least 1, wait >= 0")
        self.max_frame_bytes = max_frame_bytes
        self.max_renders = max_renders
        self.wait_seconds = wait_seconds
        self._slots = threading.BoundedSemaphore(max_renders)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the render slots for the block; PreviewBusy if none came free in time."""
        if not self._slots.acquire(timeout=self.wait_seconds):
            raise PreviewBusy("the gateway is busy drawing other previews; try again in a moment")
        try:
            yield
        finally:
            self._slots.release()


def _int(header: Dataset, keyword: str, default: int | None = None) -> int:
    value = header.get(keyword)
    if value is None or value == "":
        if default is not None:
            return default
        raise PreviewUnavailable(f"the image attributes are incomplete ({keyword} is missing)")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise PreviewUnavailable(f"{keyword} is not a number") from None


def _positive(header: Dataset, keyword: str) -> int:
    value = _int(header, keyword)
    if value < 1:
        raise PreviewUnavailable(f"{keyword} {value} is not a valid image size")
    return value


def _frames(header: Dataset) -> int:
    value = header.get("NumberOfFrames")
    if value is None or value == "":
        return 1
    try:
        frames = int(value)
    except (TypeError, ValueError):
        raise PreviewUnavailable("NumberOfFrames is not a number") from None
    if frames < 1:
        raise PreviewUnavailable(f"NumberOfFrames {frames} is not a positive number")
    return frames


def _mib(size: int) -> str:
    return f"{size / MIB:,.0f} MiB" if size >= MIB else f"{size:,} bytes"
