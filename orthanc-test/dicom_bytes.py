"""Comparing DICOM files across nodes: what was on the wire, without each node's meta header."""

from __future__ import annotations

import io

from pydicom.filereader import _read_file_meta_info, read_preamble


def dataset_body(data: bytes) -> bytes:
    """The bytes after the preamble and file meta group: what the sender put on the wire.

    Each node writes its own file meta header (implementation UID, source AE), so byte
    identity of an instance means identity of everything after it.
    """
    stream = io.BytesIO(data)
    read_preamble(stream, False)
    _read_file_meta_info(stream)
    return data[stream.tell() :]
