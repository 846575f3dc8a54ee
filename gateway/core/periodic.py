"""A thread that runs one pass now and then every `every` seconds until stopped; a pass that
fails is logged and the next one tries again (the keeper's and the prefetch schedule's)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, every: float, run_once: Callable[[], object]) -> None:
        self.name = name
        self.every = every
        self._run_once = run_once
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while True:
            try:
                self._run_once()
            except Exception:  # R4, the PACS or the disk away: the next pass tries again
                log.exception("%s: a pass failed; trying again in %.0f s", self.name, self.every)
            if self._stop.wait(self.every):
                return
