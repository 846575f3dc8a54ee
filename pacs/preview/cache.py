"""Rendered previews on disk: `<root>/<StudyUID>/<SeriesUID>/<kind>.png`, made once.

A hit costs one stat() and never opens a DICOM file, so the API can serve previews as
plain files. A miss decodes the series' representative instance once and writes every
kind from that one decode. Files appear under their real name only when complete (temp
file + os.replace); threads asking for the same series wait for one render, processes
may both render and the last rename wins with identical bytes.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal
from weakref import WeakValueDictionary

from PIL import Image

from pacs.preview.errors import PreviewUnavailable
from pacs.preview.guard import PreviewRefused, RenderGuard
from pacs.preview.render import (
    DEFAULT_GUARD,
    PREVIEW_SIZE,
    THUMBNAIL_SIZE,
    encode_image,
    fit,
    pick_representative,
    render_image,
)

Kind = Literal["preview", "thumbnail"]

_UID = re.compile(r"[0-9]+(?:\.[0-9]+)*")
_UID_MAX_LENGTH = 64
# Written when the representative instance cannot be drawn, so a broken series costs one
# decode, not one per request; its text is the (patient-free) reason.
_UNAVAILABLE = "unavailable.txt"


class PreviewCache:
    def __init__(
        self,
        root: Path,
        *,
        preview_size: int = PREVIEW_SIZE,
        thumbnail_size: int = THUMBNAIL_SIZE,
        guard: RenderGuard | None = None,
    ) -> None:
        self.root = Path(root)
        # Shared with every other path that decodes pixels, so its slots bound them all.
        self.guard = guard or DEFAULT_GUARD
        # Largest first: each smaller kind is shrunk from the one before, not from full size.
        self._sizes: dict[str, int] = dict(
            sorted(
                {"preview": preview_size, "thumbnail": thumbnail_size}.items(),
                key=lambda item: -item[1],
            )
        )
        self._locks: WeakValueDictionary[tuple[str, str], threading.Lock] = WeakValueDictionary()
        self._locks_guard = threading.Lock()

    def path_for(self, study_uid: str, series_uid: str, kind: Kind = "preview") -> Path:
        """Where the file for this series and kind lives (it may not exist yet)."""
        if kind not in self._sizes:
            raise ValueError(f"unknown preview kind {kind!r}: use 'preview' or 'thumbnail'")
        return self._series_dir(study_uid, series_uid) / f"{kind}.png"

    def lookup(self, study_uid: str, series_uid: str, kind: Kind = "preview") -> Path | None:
        """The cached file, or None if not rendered yet. Never reads a DICOM file.

        Raises PreviewUnavailable when this series is already known to have no drawable
        image (until invalidate()).
        """
        target = self.path_for(study_uid, series_uid, kind)
        with contextlib.suppress(FileNotFoundError):
            # Size 0 can only be a file cut short by a crash of the machine: render again.
            if target.stat().st_size > 0:
                return target
        with contextlib.suppress(FileNotFoundError):
            reason = (target.parent / _UNAVAILABLE).read_text(encoding="utf-8").strip()
            raise PreviewUnavailable(reason or "the image could not be drawn")
        return None

    def get_or_render(
        self,
        study_uid: str,
        series_uid: str,
        source: Path | Sequence[Path],
        kind: Kind = "preview",
    ) -> Path:
        """The cached file for this series and kind, rendering it first if needed.

        `source` is the instance to draw, or all files of the series: the representative
        one is then picked, and only on a miss (a hit touches no DICOM file).
        Raises PreviewUnavailable (the caller serves placeholder_png()) and ValueError
        for a UID that is not digits and dots.
        """
        hit = self.lookup(study_uid, series_uid, kind)
        if hit is not None:
            return hit
        with self._lock_for(study_uid, series_uid):
            hit = self.lookup(study_uid, series_uid, kind)  # rendered while we waited
            if hit is not None:
                return hit
            self._render_series(self._series_dir(study_uid, series_uid), source)
        return self.path_for(study_uid, series_uid, kind)

    def invalidate(self, study_uid: str, series_uid: str) -> None:
        """Forget this series' previews, e.g. after more of its instances arrived."""
        series_dir = self._series_dir(study_uid, series_uid)
        with self._lock_for(study_uid, series_uid):
            for name in (*(f"{kind}.png" for kind in self._sizes), _UNAVAILABLE):
                with contextlib.suppress(FileNotFoundError):
                    (series_dir / name).unlink()

    def forget_study(self, study_uid: str) -> None:
        """Forget every preview of the study: its files changed, or it was removed."""
        shutil.rmtree(self.root / _checked_uid(study_uid), ignore_errors=True)

    # -- internals -------------------------------------------------------------------------

    def _series_dir(self, study_uid: str, series_uid: str) -> Path:
        return self.root / _checked_uid(study_uid) / _checked_uid(series_uid)

    def _lock_for(self, study_uid: str, series_uid: str) -> threading.Lock:
        key = (study_uid, series_uid)
        with self._locks_guard:
            lock = self._locks.get(key)
            if lock is None:
                lock = self._locks[key] = threading.Lock()
            return lock

    def _render_series(self, series_dir: Path, source: Path | Sequence[Path]) -> None:
        if isinstance(source, str | os.PathLike):
            path = Path(source)
        else:
            path = pick_representative(source)
        try:
            image: Image.Image = render_image(
                path, max_size=max(self._sizes.values()), guard=self.guard
            )
        except PreviewRefused:
            raise  # depends on settings and load, not on the series: not remembered
        except PreviewUnavailable as exc:
            _write_atomic(series_dir / _UNAVAILABLE, exc.reason.encode("utf-8"))
            raise
        for kind, size in self._sizes.items():
            image = fit(image, size)
            _write_atomic(series_dir / f"{kind}.png", encode_image(image, "PNG"))


def _checked_uid(uid: str) -> str:
    # Digits and dots only: no "..", no separators, nothing that leaves the cache root.
    if not isinstance(uid, str) or len(uid) > _UID_MAX_LENGTH or not _UID.fullmatch(uid):
        raise ValueError(f"not a DICOM UID: {uid!r:.80}")
    return uid


def _write_atomic(target: Path, data: bytes) -> None:
    # No fsync: a cached preview can always be made again, and lookup() treats the one
    # thing a crash can leave behind (an empty file) as a miss.
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        _replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


# Windows refuses to replace a file another thread or process holds open (a response still
# streaming the previous preview, an antivirus scan): wait briefly, then keep that file.
_REPLACE_RETRY_DELAYS = (0.02, 0.05, 0.1, 0.25, 0.5)


def _replace(temp: str, target: Path) -> None:
    for delay in (*_REPLACE_RETRY_DELAYS, None):
        try:
            os.replace(temp, target)
            return
        except PermissionError:
            if delay is None:
                if target.is_file() and target.stat().st_size > 0:
                    # Another writer's complete preview of the same series: as good as ours.
                    os.unlink(temp)
                    return
                raise
            time.sleep(delay)
