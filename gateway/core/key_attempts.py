"""Failed API key attempts per client address, to slow someone guessing keys.

A key is 256 bits, so guessing cannot succeed; what this stops is a guesser's load on the
gateway (every miss is a database read) and the noise in its log, and it makes the guessing
visible (audited once per address each time it is refused). The rule: after `limit` failed
attempts from one address within `window` seconds, every key check from that address is
refused, right key or not, until the oldest of those failures is `window` seconds old.
Other addresses are not affected.

Kept in memory, per process: a restart forgets it, which only gives a guesser one more
window. At most `max_addresses` addresses are remembered (the least recently failing one
is forgotten first), so a spray from many addresses cannot grow it without bound.
Hand-written rather than a rate-limit library: what is ours is exactly that bound and
"only failures count", and it is the size of a library's configuration.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

# A few addresses on a practice network; many more only when someone sprays from a range.
MAX_ADDRESSES = 10_000


class FailedKeyAttempts:
    def __init__(
        self,
        limit: int,
        window: float = 60.0,
        *,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.window = window
        self.max_addresses = max_addresses
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> int | None:
        """Whole seconds until `address` may try a key again; None: it may now."""
        with self._lock:
            times = self._failures.get(address)
            if times is None or len(times) < self.limit:
                return None
            wait = times[0] + self.window - self._clock()
        return math.ceil(wait) if wait > 0 else None

    def failed(self, address: str) -> bool:
        """Count one failed attempt; True when it is the one that makes `address` wait."""
        now = self._clock()
        with self._lock:
            times = self._failures.pop(address, None)
            if times is None:
                times = deque(maxlen=self.limit)
            while times and times[0] <= now - self.window:
                times.popleft()
            times.append(now)
            self._failures[address] = times  # most recent last: evicted last
            while len(self._failures) > self.max_addresses:
                self._failures.popitem(last=False)
            return len(times) == self.limit

    def __len__(self) -> int:
        return len(self._failures)
