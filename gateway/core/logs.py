"""Log lines for operators: timestamped text, or one JSON object per line.

    logs.configure("text")     # 2026-12-01T15:40:54.123+00:00 INFO gateway.jobs: ...
    logs.configure("json")     # {"time": "...", "level": "INFO", "logger": "...", "message": ...}

Invariants:
- One handler on the root logger writes every line (uvicorn's own loggers propagate to it:
  `serve` starts uvicorn with log_config=None), so every line has a timestamp and one format.
- pynetdicom's records never reach the root logger's other handlers (Rollbar): its logger
  does not propagate and has its own handler, which lets through at most `burst` lines per
  message per `window` seconds and then says how many similar lines it left out. A PACS
  that keeps aborting associations writes a few lines a minute, not thousands.
- A start-up failure is one sentence: the formatted traceback uvicorn logs after a failed
  lifespan is dropped (the app logged why, its traceback at DEBUG).
- Fields passed as `extra=` that are listed in JOB_FIELDS (job id, kind, counts, bytes,
  durations: never patient data) become JSON keys, or `key=value` at the end of a text line.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal, TextIO

LogFormat = Literal["text", "json"]

# Structured fields the job lifecycle lines carry (see jobs.store); nothing patient-related.
JOB_FIELDS = (
    "job_id",
    "kind",
    "event",
    "key_name",
    "attempt",
    "reason",
    "next_attempt_at",
    "state",
    "instances",
    "studies",
    "bytes",
    "duration_s",
)
_NOISY = "pynetdicom"
_REPEATING = ("gateway.api.previews", "gateway.dicomweb")
_HANDLER_MARK = "_pacs_gateway_handler"


def configure(
    log_format: LogFormat = "text",
    *,
    level: int = logging.INFO,
    stream: TextIO | None = None,
    burst: int = 5,
    window: float = 60.0,
) -> None:
    """Install the gateway's handlers (replacing any installed before by this function)."""
    formatter: logging.Formatter = JsonFormatter() if log_format == "json" else TextFormatter()
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    # basicConfig's plain stderr handler (the CLI callback installs it) would double each line.
    for old in [h for h in root.handlers if type(h) is logging.StreamHandler]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    root.setLevel(level)

    noisy = logging.getLogger(_NOISY)
    for old in [h for h in noisy.handlers if getattr(h, _HANDLER_MARK, False)]:
        noisy.removeHandler(old)
    noisy_handler = logging.StreamHandler(stream or sys.stderr)
    noisy_handler.setFormatter(formatter)
    noisy_handler.addFilter(RateLimit(burst, window))
    setattr(noisy_handler, _HANDLER_MARK, True)
    noisy.addHandler(noisy_handler)
    noisy.propagate = False  # keeps pynetdicom's lines out of Rollbar's root handler
    # Refused previews are not cached (the limit may change), so a page that keeps asking
    # for a hostile series would log each time: the same line at most `burst` times a window.
    for name in _REPEATING:
        repeating = logging.getLogger(name)
        for old_filter in [f for f in repeating.filters if isinstance(f, RateLimit)]:
            repeating.removeFilter(old_filter)
        repeating.addFilter(RateLimit(burst, window, by_message=True))
    # The app's lifespan says in one sentence why it could not start; uvicorn would add the
    # traceback starlette hands it as text.
    lifespan = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, DropTracebackText) for f in lifespan.filters):
        lifespan.addFilter(DropTracebackText())
    # One line per association and per image at INFO: too much for an operator's log.
    noisy.setLevel(logging.WARNING)
    # httpx logs full request URLs at INFO, and URLs can carry patient ids.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds")


def _fields(record: logging.LogRecord) -> dict[str, object]:
    return {name: record.__dict__[name] for name in JOB_FIELDS if name in record.__dict__}


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        extra = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        if extra:
            line = f"{line} [{extra}]"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class DropTracebackText(logging.Filter):
    """Drops a record whose message is a formatted traceback (uvicorn logs the one starlette
    sends with `lifespan.startup.failed`); the app has logged its sentence already."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Traceback (most recent call last)")


class RateLimit(logging.Filter):
    """At most `burst` records per message template per `window` seconds.

    The first record after a window in which some were dropped says how many.
    """

    def __init__(
        self,
        burst: int = 5,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        by_message: bool = False,
    ) -> None:
        super().__init__()
        # By template (pynetdicom: addresses and ids vary) or by the whole line.
        self.by_message = by_message
        self.burst = burst
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        # template -> (window start, passed in window, dropped in window)
        self._seen: dict[str, tuple[float, int, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = f"{record.name}:{record.getMessage() if self.by_message else record.msg}"
        now = self._clock()
        with self._lock:
            start, passed, dropped = self._seen.get(key, (now, 0, 0))
            if now - start >= self.window:
                if dropped:
                    record.msg = f"{record.msg} ({dropped} similar lines left out before this one)"
                start, passed, dropped = now, 0, 0
            if passed >= self.burst:
                self._seen[key] = (start, passed, dropped + 1)
                if len(self._seen) > 1000:  # templates are few; never grow without bound
                    self._seen.clear()
                return False
            self._seen[key] = (start, passed + 1, dropped)
            return True
