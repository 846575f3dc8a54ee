"""multipart/related bodies of stored DICOM files, streamed as they are on disk."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

PART_TYPE = "application/dicom"
CHUNK = 256 * 1024


def new_boundary() -> str:
    # Random: a boundary must not occur inside a part, and file bytes are arbitrary.
    return uuid.uuid4().hex


def content_type(boundary: str) -> str:
    return f'multipart/related; type="{PART_TYPE}"; boundary={boundary}'


def stream_files(paths: Sequence[Path], boundary: str) -> Iterator[bytes]:
    """One part per file (the whole Part 10 file, bytes unchanged), then the close marker.

    A sync generator: Starlette iterates it in a worker thread, so file reads never block
    the event loop, and memory stays at one chunk whatever the study's size."""
    head = f"--{boundary}\r\nContent-Type: {PART_TYPE}\r\n\r\n".encode("ascii")
    for index, path in enumerate(paths):
        yield (b"\r\n" if index else b"") + head
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
    yield f"\r\n--{boundary}--\r\n".encode("ascii")
