"""When to try a failed job again, and when to give up.

Plain arithmetic rather than tenacity's wait/stop helpers: those take a tenacity
RetryCallState and draw jitter from the module-level `random`, while our attempts live in the
database across processes and restarts, and tests need to inject the random source."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off: initial_delay * factor ** (attempt - 1), capped at max_delay.

    jitter: "full" draws uniformly from [0, delay]; a fraction f draws from
    [delay * (1 - f), delay * (1 + f)], still capped at max_delay, so that jobs failing
    together (a PACS going down) do not all come back at the same moment."""

    initial_delay: float = 5.0
    factor: float = 2.0
    max_delay: float = 600.0
    jitter: float | Literal["full"] = 0.1
    max_attempts: int = 8
    # Seconds since the first attempt after which no further attempt starts; None = no limit.
    max_total: float | None = 6 * 3600.0
    random: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.initial_delay < 0 or self.max_delay < self.initial_delay:
            raise ValueError("need 0 <= initial_delay <= max_delay")
        if self.factor < 1:
            raise ValueError("factor must be >= 1")
        if self.jitter != "full" and not 0 <= self.jitter <= 1:
            raise ValueError('jitter is "full" or a fraction between 0 and 1')
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")

    def next_delay(self, attempt: int, first_attempt_at: datetime, now: datetime) -> float | None:
        """Seconds to wait after attempt number `attempt` (1-based) failed, or None to give up."""
        if attempt >= self.max_attempts:
            return None
        try:
            delay = min(self.max_delay, self.initial_delay * self.factor ** (attempt - 1))
        except OverflowError:  # a huge max_attempts: long past the cap anyway
            delay = self.max_delay
        if self.jitter == "full":
            delay *= self.random()
        else:
            delay = min(self.max_delay, delay * (1 + self.jitter * (2 * self.random() - 1)))
        if self.max_total is not None:
            elapsed = (now - first_attempt_at).total_seconds()
            if elapsed + delay > self.max_total:
                return None
        return delay
