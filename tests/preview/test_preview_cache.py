"""PreviewCache: render once, serve the file afterwards, stay inside the root."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from preview_factory import decode_png, write_image

import pacs.preview.cache as cache_module
from pacs.preview import PreviewCache, PreviewUnavailable

STUDY = "1.2.826.0.1.3680043.8.498.1"
SERIES = "1.2.826.0.1.3680043.8.498.1.2"


def radiograph(tmp_path, name="io.dcm"):
    # Intraoral-like proportions, so both kinds are shrunk.
    y, x = np.mgrid[0:1300, 0:1000]
    pixels = (400 + x + 2 * y).astype(np.uint16)
    pixels[300:700, 200:500] = 4000
    return write_image(tmp_path / name, pixels, bits_stored=12)


@pytest.fixture
def cache(tmp_path):
    return PreviewCache(tmp_path / "previews")


class Renders(list):
    """The decodes done. A decode can be held until `callers` requests have come in, so
    that concurrent requests really overlap it (or the race being tested never happens)."""

    def __init__(self) -> None:
        super().__init__()
        self.callers = 0
        self.arrived = 0
        self._changed = threading.Condition()

    def arrive(self) -> None:
        with self._changed:
            self.arrived += 1
            self._changed.notify_all()

    def hold(self) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self.arrived >= self.callers, timeout=30)


@pytest.fixture
def renders(monkeypatch) -> Renders:
    calls = Renders()
    real = cache_module.render_image

    def counting(path, **kwargs):
        calls.append(path)
        calls.hold()
        return real(path, **kwargs)

    monkeypatch.setattr(cache_module, "render_image", counting)
    return calls


def test_renders_both_kinds_once_then_serves_files(tmp_path, cache, renders):
    source = radiograph(tmp_path)
    preview = cache.get_or_render(STUDY, SERIES, source, "preview")
    assert preview == tmp_path / "previews" / STUDY / SERIES / "preview.png"
    assert decode_png(preview.read_bytes()).shape == (1024, 788)
    source.unlink()  # a hit must not need the DICOM file
    thumbnail = cache.get_or_render(STUDY, SERIES, source, "thumbnail")
    assert decode_png(thumbnail.read_bytes()).shape == (128, 98)
    assert cache.get_or_render(STUDY, SERIES, source, "preview") == preview
    assert len(renders) == 1
    assert decode_png(thumbnail.read_bytes()).std() > 5


def test_series_source_is_picked_only_on_a_miss(tmp_path, cache, renders):
    paths = [radiograph(tmp_path, f"{k}.dcm") for k in range(3)]
    first = cache.get_or_render(STUDY, SERIES, paths, "thumbnail")
    assert renders == [paths[1]]
    for path in paths:
        path.unlink()
    assert cache.get_or_render(STUDY, SERIES, paths, "thumbnail") == first


def test_lookup_never_renders(tmp_path, cache):
    assert cache.lookup(STUDY, SERIES) is None
    cache.get_or_render(STUDY, SERIES, radiograph(tmp_path))
    assert cache.lookup(STUDY, SERIES, "thumbnail") == cache.path_for(STUDY, SERIES, "thumbnail")


def test_concurrent_requests_render_once_and_leave_one_valid_file(tmp_path, cache, renders):
    source = radiograph(tmp_path)
    renders.callers = 12
    results, errors = [], []

    def request(kind):
        renders.arrive()
        try:
            results.append(cache.get_or_render(STUDY, SERIES, source, kind))
        except Exception as exc:  # collected: an assertion in a thread would be lost
            errors.append(exc)

    threads = [
        threading.Thread(target=request, args=("preview" if k % 2 else "thumbnail",))
        for k in range(12)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(renders) == 1
    assert len(set(results)) == 2
    series_dir = tmp_path / "previews" / STUDY / SERIES
    assert sorted(p.name for p in series_dir.iterdir()) == ["preview.png", "thumbnail.png"]
    assert decode_png((series_dir / "preview.png").read_bytes()).shape == (1024, 788)


def test_two_caches_on_one_root_both_leave_a_valid_file(tmp_path, renders):
    # Two processes do not share locks: both may render; os.replace keeps the file whole.
    source = radiograph(tmp_path)
    caches = [PreviewCache(tmp_path / "previews") for _ in range(2)]
    renders.callers = 2

    def request(cache):
        renders.arrive()
        cache.get_or_render(STUDY, SERIES, source)

    threads = [threading.Thread(target=request, args=(c,)) for c in caches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    series_dir = tmp_path / "previews" / STUDY / SERIES
    assert sorted(p.name for p in series_dir.iterdir()) == ["preview.png", "thumbnail.png"]
    assert decode_png((series_dir / "preview.png").read_bytes()).shape == (1024, 788)


def test_unavailable_is_remembered_until_invalidated(tmp_path, cache, renders):
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(radiograph(tmp_path).read_bytes()[:5000])
    with pytest.raises(PreviewUnavailable) as first:
        cache.get_or_render(STUDY, SERIES, broken)
    broken.unlink()
    with pytest.raises(PreviewUnavailable) as second:
        cache.get_or_render(STUDY, SERIES, broken, "thumbnail")
    assert second.value.reason == first.value.reason
    assert len(renders) == 1
    cache.invalidate(STUDY, SERIES)
    fixed = radiograph(tmp_path, "fixed.dcm")
    assert cache.get_or_render(STUDY, SERIES, fixed).is_file()


def test_empty_file_left_by_a_crash_is_a_miss(tmp_path, cache):
    target = cache.path_for(STUDY, SERIES)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"")
    assert cache.lookup(STUDY, SERIES) is None
    cache.get_or_render(STUDY, SERIES, radiograph(tmp_path))
    assert target.stat().st_size > 0


@pytest.mark.parametrize(
    "uid",
    [
        "..",
        "../../etc",
        "1.2/../../x",
        "/etc/passwd",
        "1.2.3\x00",
        "1..2",
        ".1.2",
        "1.2.",
        "",
        "1.2.abc",
        "1" * 65,
        "１.２",  # full-width digits: \d would accept them
    ],
)
def test_uids_that_are_not_digits_and_dots_are_refused(tmp_path, cache, uid):
    source = radiograph(tmp_path)
    for study, series in ((uid, SERIES), (STUDY, uid)):
        with pytest.raises(ValueError, match="not a DICOM UID"):
            cache.get_or_render(study, series, source)
        with pytest.raises(ValueError, match="not a DICOM UID"):
            cache.lookup(study, series)
    assert not (tmp_path / "previews").exists()


def test_unknown_kind_is_refused(cache):
    with pytest.raises(ValueError, match="kind"):
        cache.path_for(STUDY, SERIES, "full")  # type: ignore[arg-type]


def test_configured_sizes(tmp_path):
    cache = PreviewCache(tmp_path / "previews", preview_size=512, thumbnail_size=64)
    source = radiograph(tmp_path)
    assert decode_png(cache.get_or_render(STUDY, SERIES, source).read_bytes()).shape == (
        512,
        394,
    )
    thumbnail = cache.get_or_render(STUDY, SERIES, source, "thumbnail")
    assert decode_png(thumbnail.read_bytes()).shape == (64, 49)
