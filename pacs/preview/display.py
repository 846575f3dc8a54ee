"""DICOM pixels to 8-bit display pixels, the way a viewer would first show them.

Grayscale follows the PS3.4 N.2 pipeline: stored values -> Modality LUT (rescale) ->
VOI LUT or window -> MONOCHROME1 inversion, all in floating point so 16-bit data keeps
every grey level. Colour images come out of pydicom's decoders already converted to
RGB (YBR_FULL, YBR_FULL_422, ...) and are only scaled to 8 bits; PALETTE COLOR goes
through its lookup tables.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import (
    apply_color_lut,
    apply_modality_lut,
    apply_voi_lut,
    get_decoder,
    pixel_array,
)
from pydicom.uid import UID

from pacs.preview.errors import PreviewUnavailable
from pacs.preview.guard import (
    DEFAULT_MAX_FRAME_BYTES,
    DeclaredImage,
    check_codestream,
    check_declared,
    reduce_to,
)

_IMAGE_KEYWORDS = ("PhotometricInterpretation", "BitsStored", "PixelRepresentation")
_MODALITY_KEYWORDS = ("RescaleSlope", "RescaleIntercept", "RescaleType", "ModalityLUTSequence")
_VOI_KEYWORDS = ("WindowCenter", "WindowWidth", "VOILUTFunction", "VOILUTSequence")
# Enhanced multi-frame objects keep rescale and window in functional groups, not at the
# top level: (functional group macro, the attributes it carries).
_FRAME_MACROS = (
    ("PixelValueTransformationSequence", _MODALITY_KEYWORDS),
    ("FrameVOILUTSequence", _VOI_KEYWORDS),
)

# Auto contrast ignores the extreme 0.5 % on each side (hot pixels, collimator edges,
# padding) and estimates them on a strided sample: two percentiles need no more.
_AUTO_PERCENTILES = (0.5, 99.5)
_AUTO_SAMPLE_PIXELS = 65_536

# Library errors that mean "this data is broken", as opposed to our own bugs.
_DATA_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    RuntimeError,  # NotImplementedError too: an unsupported LUT depth
)


def read_display_pixels(
    path: Path,
    *,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    bound: int | None = None,
) -> np.ndarray:
    """The representative frame of one instance: uint8 (rows, cols) grey or (rows, cols, 3) RGB.

    Multi-frame: the middle frame, and only that frame is decoded, and only once the
    header's declared sizes passed check_declared() against `max_frame_bytes`. `bound`
    (None: no bound) caps the longest side of the result by striding the decoded pixels.
    Raises PreviewUnavailable when the file holds no drawable picture (PreviewRefused when
    it declares more than the limit); OSError (missing file, no permission) passes through,
    since it says nothing about the file's contents.
    """
    with open(path, "rb") as f:
        header = _read_header(f)
        _require_decoder(header)
        declared = check_declared(header, os.fstat(f.fileno()).st_size, max_frame_bytes)
        frames = declared.frames if declared else 1
        index = (frames - 1) // 2
        if declared:
            check_codestream(f, header, declared, index)
        stored = _decode_frame(f, index if frames > 1 else None)
    if declared:
        _require_declared_shape(stored, declared)
    return to_display(reduce_to(stored, bound), header, index)


def _require_declared_shape(stored: np.ndarray, declared: DeclaredImage) -> None:
    # A codestream may carry its own dimensions; a frame that is not what the header
    # declared is damaged, and its size was not the one that was checked.
    if stored.shape[:2] != (declared.rows, declared.columns):
        raise PreviewUnavailable("the pixel data does not match its rows and columns")


def to_display(stored: np.ndarray, header: Dataset, frame: int = 0) -> np.ndarray:
    """Decoded pixels of one frame (as pydicom returns them) to uint8 display pixels."""
    photometric = str(header.get("PhotometricInterpretation", "")).strip().upper()
    if photometric == "PALETTE COLOR":
        return _palette_to_rgb8(stored, header)
    if stored.ndim == 3:
        return _colour_to_rgb8(stored, header)
    attrs = grey_attributes(header, frame)
    unit = _voi_to_unit(apply_modality_lut(stored, attrs), attrs)
    if photometric == "MONOCHROME1":
        unit = 1 - unit  # PS3.3 C.7.6.3.1.2: the minimum value is displayed white
    return _unit_to_uint8(unit)


def grey_attributes(header: Dataset, frame: int) -> Dataset:
    """A flat dataset with the Modality LUT and VOI attributes that apply to `frame`.

    pydicom's LUT functions read top-level attributes only; copying the shared and then
    the per-frame functional group values over them (per-frame wins, PS3.3 C.7.6.16)
    lets Enhanced CT/MR/XA use the same code path.
    """
    flat = Dataset()
    # OW lookup tables are raw bytes: pydicom needs the transfer syntax for their byte order.
    flat.file_meta = header.file_meta
    for keyword in (*_IMAGE_KEYWORDS, *_MODALITY_KEYWORDS, *_VOI_KEYWORDS):
        _copy(header, flat, keyword)
    for group in _functional_groups(header, frame):
        for macro, keywords in _FRAME_MACROS:
            items = group.get(macro)
            if items:
                for keyword in keywords:
                    _copy(items[0], flat, keyword)
    return flat


def _functional_groups(header: Dataset, frame: int) -> list[Dataset]:
    groups = []
    shared = header.get("SharedFunctionalGroupsSequence")
    if shared:
        groups.append(shared[0])
    per_frame = header.get("PerFrameFunctionalGroupsSequence")
    if per_frame and frame < len(per_frame):
        groups.append(per_frame[frame])
    return groups


def _copy(source: Dataset, target: Dataset, keyword: str) -> None:
    # An empty type 2 attribute means "not given": it must not hide a real value.
    if keyword in source and not source[keyword].is_empty:
        target[keyword] = source[keyword]


# -- reading -------------------------------------------------------------------------------


def _read_header(f: BinaryIO) -> Dataset:
    try:
        return dcmread(f, stop_before_pixels=True)
    except InvalidDicomError as exc:
        raise PreviewUnavailable("the file is not a DICOM file") from exc
    except OSError:
        raise
    except Exception as exc:  # pydicom raises many kinds on a damaged header
        raise PreviewUnavailable("the DICOM header is truncated or corrupt") from exc


def _require_decoder(header: Dataset) -> None:
    syntax = UID(header.file_meta.get("TransferSyntaxUID") or "")
    if not syntax:  # Part 10 files must name it: the file meta header is cut short or broken
        raise PreviewUnavailable("the DICOM header is truncated or corrupt")
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError as exc:
        raise PreviewUnavailable(f"pixel data encoded as {syntax.name} is not supported") from exc
    if not decoder.is_available:
        raise PreviewUnavailable(f"no decoder is installed for {syntax.name}")


def _decode_frame(f: BinaryIO, index: int | None) -> np.ndarray:
    # pixel_array() on the open file reads only the requested frame of native data and
    # stops walking encapsulated fragments once it has it; as_rgb (its default) turns
    # YBR colour spaces into RGB.
    try:
        return pixel_array(f, index=index)
    except OSError:
        raise
    except AttributeError as exc:
        if "no pixel data" in str(exc).lower():
            raise PreviewUnavailable("the file has no pixel data") from exc
        raise PreviewUnavailable("the image attributes are incomplete") from exc
    except Exception as exc:  # every decoder plugin has its own exception types
        raise PreviewUnavailable("the pixel data is truncated or corrupt") from exc


# -- grayscale -------------------------------------------------------------------------------


def _voi_to_unit(values: np.ndarray, attrs: Dataset) -> np.ndarray:
    """VOI LUT, else the first window, else auto contrast: float32 in [0, 1]."""
    unit = _voi_lut(values, attrs)
    if unit is None:
        unit = _window(values, attrs)
    if unit is None or _all_clipped(unit):
        # A window that clips every pixel to one end would draw a blank square; a
        # preview is more use showing the structure than honouring a bad window.
        unit = _auto_contrast(values)
    return unit


def _voi_lut(values: np.ndarray, attrs: Dataset) -> np.ndarray | None:
    items = attrs.get("VOILUTSequence")
    if not items:
        return None
    try:
        top = 2 ** int(items[0].LUTDescriptor[2]) - 1
        # The LUT is indexed by integer modality values; floats from a rescale round.
        indices = np.rint(values).astype(np.int64) if values.dtype.kind == "f" else values
        out = apply_voi_lut(indices, attrs, index=0, prefer_lut=True)
    except _DATA_ERRORS:
        return None  # a malformed LUT: fall back to the window
    return np.clip(out.astype(np.float32) / np.float32(top), 0, 1)


def _window(values: np.ndarray, attrs: Dataset) -> np.ndarray | None:
    if "WindowCenter" not in attrs or "WindowWidth" not in attrs:
        return None
    # pydicom maps window output onto the stored-value range of the dataset it is given;
    # a view declaring 8 unsigned bits and no rescale makes that range exactly 0..255.
    view = Dataset()
    view.PhotometricInterpretation = "MONOCHROME2"
    view.BitsStored, view.PixelRepresentation = 8, 0
    view.WindowCenter, view.WindowWidth = attrs.WindowCenter, attrs.WindowWidth
    view.VOILUTFunction = str(attrs.get("VOILUTFunction") or "LINEAR").strip().upper()
    try:
        out = apply_voi_lut(values, view, index=0)  # index 0: the first of several windows
    except _DATA_ERRORS:
        return None  # width < 1 and the like: as if there were no window
    return out.astype(np.float32) / np.float32(255)


def _all_clipped(unit: np.ndarray) -> bool:
    return bool(unit.max() <= 0 or unit.min() >= 1)


def _auto_contrast(values: np.ndarray) -> np.ndarray:
    step = max(1, int(np.ceil(np.sqrt(values.size / _AUTO_SAMPLE_PIXELS))))
    sample = values[::step, ::step]
    low, high = (float(v) for v in np.percentile(sample, _AUTO_PERCENTILES))
    if high <= low:  # most pixels share one value: the full range is the only contrast
        low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, np.float32)
    unit = (values.astype(np.float32) - np.float32(low)) / np.float32(high - low)
    return np.clip(unit, 0, 1, out=unit)


def _unit_to_uint8(unit: np.ndarray) -> np.ndarray:
    scaled = np.clip(unit, 0, 1) * np.float32(255) + np.float32(0.5)
    return scaled.astype(np.uint8)


# -- colour ----------------------------------------------------------------------------------


def _colour_to_rgb8(stored: np.ndarray, header: Dataset) -> np.ndarray:
    if stored.dtype == np.uint8:
        return stored
    bits = int(header.get("BitsStored") or 8 * stored.dtype.itemsize)
    return _unit_to_uint8(stored.astype(np.float32) / np.float32(2**bits - 1))


def _palette_to_rgb8(stored: np.ndarray, header: Dataset) -> np.ndarray:
    try:
        rgb = apply_color_lut(stored, header)
    except _DATA_ERRORS as exc:
        raise PreviewUnavailable("the palette colour lookup table is missing or invalid") from exc
    if rgb.dtype == np.uint8:
        return rgb
    return _unit_to_uint8(rgb.astype(np.float32) / np.float32(np.iinfo(rgb.dtype).max))
