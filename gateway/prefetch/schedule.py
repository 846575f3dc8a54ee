"""When prefetch runs by itself: the evening pass for the next working day at `run_at`, and
a rolling pass every ROLLING_SECONDS for today's appointments coming up within
`ahead_minutes` whose patient has no prefetch yet (booked today, after the evening pass).

Times are the practice's local time, as R4 holds appointments. Each process that runs the
schedule may queue the same patient: the fetch's dedupe key joins them into one job.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import date, datetime, timedelta

from gateway.core.settings import PrefetchSettings
from r4.appointments import next_working_day

log = logging.getLogger(__name__)

ROLLING_SECONDS = 900.0

# (day, starting_by): None for the whole day.
Prefetch = Callable[..., object]


class PrefetchSchedule:
    def __init__(
        self,
        rules: PrefetchSettings,
        prefetch: Prefetch,
        *,
        clock: Callable[[], datetime] = datetime.now,
        every: float = ROLLING_SECONDS,
    ) -> None:
        self.rules = rules
        self.prefetch = prefetch
        self._clock = clock
        self.every = every
        self._evening_done: date | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="prefetch-schedule", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def run_once(self) -> list[str]:
        """The passes due now, by name ("evening", "rolling")."""
        now = self._clock()
        ran = []
        if now.time() >= self.rules.run_at and self._evening_done != now.date():
            self.prefetch(next_working_day(now.date()))
            self._evening_done = now.date()
            ran.append("evening")
        if self.rules.ahead_minutes:
            self.prefetch(now.date(), starting_by=now + timedelta(minutes=self.rules.ahead_minutes))
            ran.append("rolling")
        return ran

    def _run(self) -> None:
        while True:
            try:
                self.run_once()
            except Exception:  # R4 or the PACS away: the next pass tries again
                log.exception("prefetch pass failed; trying again in %.0f s", self.every)
            if self._stop.wait(self.every):
                return
