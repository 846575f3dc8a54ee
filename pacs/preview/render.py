"""Preview images of DICOM instances and series: pick, render, encode, placeholder."""

from __future__ import annotations

import io
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from PIL import Image, ImageDraw, ImageFont
from pydicom import dcmread

from pacs.preview.display import read_display_pixels
from pacs.preview.errors import PreviewUnavailable
from pacs.preview.guard import RenderGuard

PREVIEW_SIZE = 1024  # longest side of a preview, in pixels
THUMBNAIL_SIZE = 128  # longest side of a thumbnail
# Longest side of a render asked for at stored size: what a screen shows, and a bound on
# the memory one render takes (about 20 bytes per pixel in the display pipeline).
RENDER_MAX_SIDE = 2048
# Renders that name no guard share this one: its slots bound the whole process.
DEFAULT_GUARD = RenderGuard()

ImageFormat = Literal["PNG", "JPEG"]

# zlib level 1: previews of noisy radiographs barely shrink at higher levels (a few %)
# while encoding gets markedly slower; the files are cached, not archived.
_PNG_COMPRESS_LEVEL = 1
_JPEG_QUALITY = 88
# Pillow first box-reduces to within this factor of the target, then applies Lanczos:
# visually the same as a full Lanczos, several times cheaper on large radiographs.
_REDUCING_GAP = 3.0


def render_preview(
    path: Path,
    *,
    max_size: int | None = None,
    format: ImageFormat = "PNG",
    guard: RenderGuard | None = None,
) -> bytes:
    """The encoded preview of one instance (multi-frame: its middle frame).

    `max_size` bounds the longest side (never enlarged); None keeps the stored size up to
    RENDER_MAX_SIDE. `guard` (default: one shared by the process) limits declared sizes
    and concurrent decodes. Raises PreviewUnavailable when the pixels cannot be drawn,
    PreviewRefused when the guard will not draw them.
    """
    return encode_image(render_image(path, max_size=max_size, guard=guard), format)


def render_image(
    path: Path, *, max_size: int | None = None, guard: RenderGuard | None = None
) -> Image.Image:
    """Like render_preview, as a Pillow image ("L" or "RGB") for callers that compose."""
    guard = guard or DEFAULT_GUARD
    with guard.slot():
        # Striding beyond RENDER_MAX_SIDE (at least twice any preview) before Lanczos keeps
        # the look and bounds the float pipeline's memory whatever the stored size.
        pixels = read_display_pixels(
            Path(path), max_frame_bytes=guard.max_frame_bytes, bound=RENDER_MAX_SIDE
        )
        return fit(Image.fromarray(pixels), max_size or RENDER_MAX_SIDE)


def fit(image: Image.Image, max_size: int | None) -> Image.Image:
    """Shrink `image` so its longest side is at most `max_size`, keeping the aspect ratio."""
    if max_size is None or max(image.size) <= max_size:
        return image
    if max_size < 1:
        raise ValueError(f"max_size must be at least 1, not {max_size}")
    scale = max_size / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=_REDUCING_GAP)


def encode_image(image: Image.Image, format: ImageFormat = "PNG") -> bytes:
    buffer = io.BytesIO()
    if format == "PNG":
        image.save(buffer, "PNG", compress_level=_PNG_COMPRESS_LEVEL)
    elif format == "JPEG":
        image.save(buffer, "JPEG", quality=_JPEG_QUALITY)
    else:
        raise ValueError(f"unsupported preview format {format!r}: use 'PNG' or 'JPEG'")
    return buffer.getvalue()


def pick_representative(paths: Sequence[Path]) -> Path:
    """The middle image instance of a series by InstanceNumber, reading headers only.

    Files that cannot be read or hold no image (reports, key objects) are skipped;
    instances without an InstanceNumber sort last, ties by file name.
    """
    ranked = sorted(key for key in map(_rank, paths) if key is not None)
    if not ranked:
        raise PreviewUnavailable("the series holds no readable image")
    return ranked[(len(ranked) - 1) // 2][2]


def _rank(path: Path) -> tuple[int, str, Path] | None:
    try:
        header = dcmread(path, stop_before_pixels=True, specific_tags=["InstanceNumber", "Rows"])
        if "Rows" not in header:
            return None
        number = header.get("InstanceNumber")
        order = sys.maxsize if number in (None, "") else int(number)
    except Exception:  # an unreadable file is simply not a candidate
        return None
    return order, str(path), Path(path)


def placeholder_png(
    reason_short: str = "Preview not available", size: int = THUMBNAIL_SIZE
) -> bytes:
    """A plain grey square with a short text, for when no preview can be drawn."""
    image = Image.new("L", (size, size), 176)
    draw = ImageDraw.Draw(image)
    font = _font(max(8, size // 11))
    text = "\n".join(_wrap(draw, reason_short, font, size * 0.88))
    draw.multiline_text((size / 2, size / 2), text, font=font, fill=48, anchor="mm", align="center")
    return encode_image(image, "PNG")


def _font(pixels: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow's bundled default font: scalable with FreeType, a small bitmap without it.
    return ImageFont.load_default(size=pixels)


def _wrap(
    draw: ImageDraw.ImageDraw,
    text: str,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    width: float,
) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and draw.textlength(candidate, font=font) <= width:
            lines[-1] = candidate
        else:
            lines.append(word)
    return lines or [""]
