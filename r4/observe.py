"""Callbacks told of SQS commands handled and bulk uploads finished, e.g. for metrics.

Invariants: observers get message types, outcomes, counts and times only (no patient data);
an observer that raises is ignored, so counting can never break the command loop or an upload.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

CommandHandled = Callable[[str, str], None]
BulkUploaded = Callable[[float, int], None]

_lock = threading.Lock()
_command_handled: list[CommandHandled] = []
_bulk_uploaded: list[BulkUploaded] = []


def on_command_handled(callback: CommandHandled) -> None:
    """`callback(message_type, outcome)`: outcome is done, failed, interrupted or refused."""
    with _lock:
        if callback not in _command_handled:
            _command_handled.append(callback)


def on_bulk_uploaded(callback: BulkUploaded) -> None:
    """`callback(unix_time, patients)` after every complete bulk upload."""
    with _lock:
        if callback not in _bulk_uploaded:
            _bulk_uploaded.append(callback)


def command_handled(message_type: str, outcome: str) -> None:
    for callback in list(_command_handled):
        with contextlib.suppress(Exception):
            callback(message_type, outcome)


def bulk_uploaded(unix_time: float, patients: int) -> None:
    for callback in list(_bulk_uploaded):
        with contextlib.suppress(Exception):
            callback(unix_time, patients)
