"""What `serve` checks before it starts anything, so every start-up failure is one sentence.

Invariants:
- A start-up failure prints one sentence on stderr (no traceback) and exits with
  EXIT_CONFIG (1: fix the configuration, a restart alone will not help) or EXIT_UNAVAILABLE
  (3: a port or resource is taken or unreachable, a restart later may help; uvicorn also
  exits 3 when the application fails while starting). docs/deployment.md lists them all.
- The HTTP socket is bound here, before the database, the Storage SCP and the workers
  start, and handed to uvicorn; the DICOM port is probed here too. A port in use is
  reported before any job is claimed.
"""

from __future__ import annotations

import errno
import socket
from pathlib import Path

from gateway.cli import sentences
from gateway.cli.sentences import CliError
from gateway.core.settings import Settings

EXIT_CONFIG = 1
EXIT_UNAVAILABLE = 3


class StartupFailure(Exception):
    def __init__(self, sentence: str, exit_code: int) -> None:
        super().__init__(sentence)
        self.exit_code = exit_code


def load_settings(config: Path | None) -> Settings:
    """Settings as every command loads them, or StartupFailure with EXIT_CONFIG.

    The sentences are gateway.cli.sentences'; a restart alone never cures a configuration.
    """
    try:
        return sentences.load_settings(config)
    except CliError as exc:
        raise StartupFailure(str(exc), EXIT_CONFIG) from None


def bind_http(host: str, port: int) -> socket.socket:
    """The listening socket for uvicorn, or StartupFailure if the address is taken."""
    try:
        return socket.create_server((host, port), family=_family(host), backlog=2048)
    except OSError as exc:
        sentence = _port_sentence("HTTP", host, port, exc, "http_port")
        raise StartupFailure(sentence, _code(exc)) from None


def check_dicom_port(bind: str, port: int) -> None:
    """Probe the Storage SCP's port the way pynetdicom binds it (SO_REUSEADDR)."""
    try:
        with socket.socket(_family(bind), socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((bind, port))
    except OSError as exc:
        raise StartupFailure(
            _port_sentence("DICOM", bind, port, exc, "dicom_port"), _code(exc)
        ) from None


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _code(exc: OSError) -> int:
    # A taken port may come free (the old process is still stopping); a wrong address won't.
    return EXIT_UNAVAILABLE if exc.errno == errno.EADDRINUSE else EXIT_CONFIG


def _port_sentence(what: str, host: str, port: int, exc: OSError, setting: str) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"The {what} port {port} on {host} is already in use: another gateway or service "
            f"holds it; stop that one or change {setting}."
        )
    if exc.errno == errno.EACCES:
        return (
            f"The {what} port {port} on {host} needs privileges this account lacks; "
            f"use a port above 1023 in {setting}."
        )
    return f"Cannot listen for {what} on {host}:{port} ({exc.strerror}); check {setting}."
