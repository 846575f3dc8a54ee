"""Callbacks told of association failures and C-ECHO round trips, e.g. for metrics.

Invariants: observers get the peer's configured name and numbers only (no patient data); an
observer that raises is ignored, so counting can never break a fetch or an echo.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

AssociationFailed = Callable[[str], None]
EchoAnswered = Callable[[str, float], None]

_lock = threading.Lock()
_association_failed: list[AssociationFailed] = []
_echo_answered: list[EchoAnswered] = []


def on_association_failed(callback: AssociationFailed) -> None:
    """`callback(peer_name)` whenever an association to a peer is refused or fails to open."""
    with _lock:
        if callback not in _association_failed:
            _association_failed.append(callback)


def on_echo_answered(callback: EchoAnswered) -> None:
    """`callback(peer_name, seconds)` after every successful C-ECHO."""
    with _lock:
        if callback not in _echo_answered:
            _echo_answered.append(callback)


def association_failed(peer_name: str) -> None:
    for callback in list(_association_failed):
        with contextlib.suppress(Exception):
            callback(peer_name)


def echo_answered(peer_name: str, seconds: float) -> None:
    for callback in list(_echo_answered):
        with contextlib.suppress(Exception):
            callback(peer_name, seconds)
