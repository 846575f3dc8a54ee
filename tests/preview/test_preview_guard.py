"""Hostile or huge images: refused from their header, drawn within bounded memory, one at a time.

Memory is measured with tracemalloc, which numpy reports its buffers to: what a render
allocates in Python and numpy, the part that grows with the image.
"""

from __future__ import annotations

import threading
import tracemalloc

import numpy as np
import pytest
from hostile_dicom import GOOD_LARGE, PATIENT_ID, PATIENT_NAME, SIZE_BOMB, hostile_files
from preview_factory import decode_png, quadrants, write_image

from pacs.preview import (
    PreviewBusy,
    PreviewCache,
    PreviewRefused,
    PreviewUnavailable,
    RenderGuard,
    render_image,
    render_preview,
)

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return hostile_files(tmp_path_factory.mktemp("hostile"))


def peak_traced(action) -> tuple[object, int]:
    tracemalloc.start()
    try:
        result = action()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def refused(path, error=PreviewUnavailable) -> tuple[PreviewUnavailable, int]:
    """The error rendering `path` raised, and the peak memory traced meanwhile."""

    def attempt() -> PreviewUnavailable:
        with pytest.raises(error) as caught:
            render_preview(path)
        return caught.value

    return peak_traced(attempt)  # type: ignore[return-value]


def test_size_bomb_is_refused_from_its_header_without_decoding(hostile):
    error, peak = refused(hostile[SIZE_BOMB], PreviewRefused)
    reason = error.reason
    assert "too large to preview" in reason
    assert "16000 x 16000" in reason and "preview_max_frame_bytes" in reason
    # Before the guard this render took 4.9 s and 1.7 GB (the decode itself is 488 MiB).
    assert peak < 16 * MIB


@pytest.mark.parametrize(
    "case",
    [
        "wide bomb (65535 x 65535 8-bit RLE)",
        "rows x columns beyond the pixel data",
        "BitsAllocated 0",
        "Rows 0",
        "negative NumberOfFrames",
        "huge NumberOfFrames (native)",
        "huge NumberOfFrames (RLE)",
        "SamplesPerPixel 9",
        "truncated RLE segments",
        "JPEG 2000 codestream larger than its header",
        "JPEG codestream larger than its header",
    ],
)
def test_inconsistent_headers_get_a_reason_not_a_crash(hostile, case):
    error, peak = refused(hostile[case])
    assert error.reason
    for private in (PATIENT_NAME, "Hostile", PATIENT_ID, str(hostile[case])):
        assert private not in str(error)
    assert peak < 16 * MIB, f"{case}: {peak / MIB:.0f} MiB"


def test_specific_reasons_name_the_attribute(hostile):
    def reason(case: str) -> str:
        with pytest.raises(PreviewUnavailable) as caught:
            render_preview(hostile[case])
        return caught.value.reason

    assert "BitsAllocated 0" in reason("BitsAllocated 0")
    assert "NumberOfFrames -5" in reason("negative NumberOfFrames")
    assert "shorter than" in reason("rows x columns beyond the pixel data")
    assert "truncated or corrupt" in reason("truncated RLE segments")
    # Before this check the decoder allocated ~700 MB for a 12000 x 12000 J2K codestream.
    j2k = reason("JPEG 2000 codestream larger than its header")
    assert (
        j2k == "the compressed image is 12000 x 12000 pixels, not the 64 x 64 its header declares"
    )
    assert "60000 x 60000" in reason("JPEG codestream larger than its header")


def test_large_allowed_image_is_drawn_in_bounded_memory(hostile):
    # 5000 x 5000 x 16 bits = 48 MiB decoded: under the limit, drawn from a strided copy.
    image, peak = peak_traced(lambda: render_image(hostile[GOOD_LARGE], max_size=1024))
    assert image.size == (1024, 1024)
    # The decode itself (48 MiB) plus a bounded display pipeline; the full-size float
    # pipeline would need over 500 MiB.
    assert peak < 160 * MIB, f"{peak / MIB:.0f} MiB"


def test_stored_size_render_is_bounded_too(hostile):
    png = render_preview(hostile[GOOD_LARGE])
    assert max(decode_png(png).shape) <= 2048


def test_lower_limit_refuses_what_the_default_draws(tmp_path):
    path = write_image(tmp_path / "ct.dcm", quadrants(512, 512, (0, 100, 200, 300), "uint16"))
    assert render_preview(path, guard=RenderGuard(max_frame_bytes=512 * 512 * 2))
    with pytest.raises(PreviewRefused) as caught:
        render_preview(path, guard=RenderGuard(max_frame_bytes=512 * 512 * 2 - 1))
    assert "512 x 512 pixels" in caught.value.reason
    assert "524,287 bytes limit" in caught.value.reason


def test_renders_beyond_the_slots_wait_then_get_busy(tmp_path):
    path = write_image(tmp_path / "ct.dcm", quadrants(64, 64, (0, 100, 200, 300), "uint16"))
    guard = RenderGuard(max_renders=1, wait_seconds=0.2)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with guard.slot():
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        with pytest.raises(PreviewBusy) as caught:
            render_preview(path, guard=guard)
        assert "try again" in caught.value.reason
    finally:
        release.set()
        holder.join(10)
    assert render_preview(path, guard=guard)  # the slot is free again


def test_concurrent_renders_never_exceed_the_slots(tmp_path, monkeypatch):
    import pacs.preview.render as render_module

    guard = RenderGuard(max_renders=2, wait_seconds=30)
    paths = [
        write_image(tmp_path / f"{i}.dcm", quadrants(512, 512, (i, 100, 200, 300), "uint16"))
        for i in range(8)
    ]
    decoding, most = 0, 0
    lock = threading.Lock()
    # Pairs of decodes meet here, so two really run at once; a third would raise `most`.
    pair = threading.Barrier(2, timeout=10)
    decode = render_module.read_display_pixels

    def counted(*args, **kwargs):
        nonlocal decoding, most
        with lock:
            decoding += 1
            most = max(most, decoding)
        try:
            pair.wait()
            return decode(*args, **kwargs)
        finally:
            with lock:
                decoding -= 1

    monkeypatch.setattr(render_module, "read_display_pixels", counted)
    threads = [
        threading.Thread(target=render_preview, args=(p,), kwargs={"guard": guard}) for p in paths
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert most == 2


def test_cache_forgets_refusals_but_remembers_broken_series(tmp_path, hostile):
    cache = PreviewCache(tmp_path / "previews", guard=RenderGuard(max_frame_bytes=MIB))
    study = "1.2.3"
    with pytest.raises(PreviewRefused):
        cache.get_or_render(study, "1.1", hostile[GOOD_LARGE])
    # A refusal depends on the limit: nothing remembered, a larger limit draws it.
    assert cache.lookup(study, "1.1") is None
    roomy = PreviewCache(tmp_path / "previews")
    assert roomy.get_or_render(study, "1.1", hostile[GOOD_LARGE]).stat().st_size > 0
    with pytest.raises(PreviewUnavailable):
        cache.get_or_render(study, "1.2", hostile["BitsAllocated 0"])
    with pytest.raises(PreviewUnavailable):
        cache.lookup(study, "1.2")  # remembered: a broken file stays broken


def test_ordinary_image_unchanged_by_the_guard(tmp_path):
    pixels = quadrants(256, 256, (0, 1000, 2000, 3000), "uint16")
    path = write_image(tmp_path / "ct.dcm", pixels)
    image = decode_png(render_preview(path))
    assert image.shape == (256, 256)
    assert np.unique(image).size == 4
