"""Preview images of DICOM series: DICOM in, PNG/JPEG bytes or cached files out.

    render_preview(path, max_size=1024)               one instance (multi-frame: middle frame)
    pick_representative(paths)                        middle instance by InstanceNumber
    PreviewCache(root).get_or_render(study, series, paths, "thumbnail")
    placeholder_png("Preview not available", 128)     when PreviewUnavailable was raised
    RenderGuard(max_frame_bytes, max_renders)         declared-size limit and render slots

Every decode goes through a RenderGuard (the process-wide default unless one is given):
header sizes are checked before pixel data is read, and at most `max_renders` decode at once.

No HTTP and no database here; the API serves what this package writes.
"""

from pacs.preview.cache import Kind, PreviewCache
from pacs.preview.display import read_display_pixels
from pacs.preview.errors import PreviewUnavailable
from pacs.preview.guard import PreviewBusy, PreviewRefused, RenderGuard
from pacs.preview.render import (
    PREVIEW_SIZE,
    RENDER_MAX_SIDE,
    THUMBNAIL_SIZE,
    ImageFormat,
    encode_image,
    fit,
    pick_representative,
    placeholder_png,
    render_image,
    render_preview,
)

__all__ = [
    "PREVIEW_SIZE",
    "RENDER_MAX_SIDE",
    "THUMBNAIL_SIZE",
    "ImageFormat",
    "Kind",
    "PreviewBusy",
    "PreviewCache",
    "PreviewRefused",
    "PreviewUnavailable",
    "RenderGuard",
    "encode_image",
    "fit",
    "pick_representative",
    "placeholder_png",
    "read_display_pixels",
    "render_image",
    "render_preview",
]
