"""When prefetch runs by itself: the evening pass for the next working day at `run_at`, and
a rolling pass every ROLLING_SECONDS for today's appointments coming up within
`ahead_minutes` whose patient has no prefetch yet (booked today, after the evening pass).

Times are the practice's local time, as R4 holds appointments. Each process that runs the
schedule may queue the same patient: the fetch's dedupe key joins them into one job.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

from gateway.core.periodic import Periodic
from gateway.core.settings import PrefetchSettings
from r4.appointments import next_working_day

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
        self._evening_done: date | None = None
        self._thread = Periodic("prefetch-schedule", every, self.run_once)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._thread.stop(timeout)

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
