"""The one error the preview code raises about the DICOM file it was given."""

from __future__ import annotations

from pacs.errors import PacsError


class PreviewUnavailable(PacsError):
    """This file (or series) has no picture we can draw.

    `reason` is a short sentence for people ("the pixel data is truncated or corrupt");
    it names the problem, never the patient, so the caller may log it or show it next
    to a placeholder image. The underlying exception, if any, is chained.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"Preview not available: {reason}")
        self.reason = reason
