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
import os
import socket
import sys
from pathlib import Path
from typing import NoReturn

from pydantic import ValidationError

from gateway.cli.sentences import settings_error, unknown_environment
from gateway.core.settings import CONFIG_ENV, Settings

EXIT_CONFIG = 1
EXIT_UNAVAILABLE = 3


class StartupFailure(Exception):
    def __init__(self, sentence: str, exit_code: int) -> None:
        super().__init__(sentence)
        self.exit_code = exit_code


def fail(failure: StartupFailure) -> NoReturn:
    print(str(failure), file=sys.stderr, flush=True)
    raise SystemExit(failure.exit_code)


def load_settings(config: Path | None) -> Settings:
    """Settings from the environment and the TOML file; StartupFailure with a sentence."""
    if config is not None:
        os.environ[CONFIG_ENV] = str(config)
    name = os.environ.get(CONFIG_ENV) or "(none)"
    for warning in unknown_environment(Settings, known=(CONFIG_ENV,)):
        print(warning, file=sys.stderr, flush=True)
    try:
        return Settings()
    except FileNotFoundError as exc:
        raise StartupFailure(str(exc), EXIT_CONFIG) from None
    except IsADirectoryError:
        raise StartupFailure(
            f"The configuration file {name} is a folder; name the TOML file itself.", EXIT_CONFIG
        ) from None
    except PermissionError:
        raise StartupFailure(
            f"The configuration file {name} cannot be read: permission denied for the "
            "service's account.",
            EXIT_CONFIG,
        ) from None
    except UnicodeDecodeError:
        raise StartupFailure(
            f"The configuration file {name} is not UTF-8 text; save it as UTF-8.", EXIT_CONFIG
        ) from None
    except ValidationError as exc:
        # The same sentence as every other command: the file or variable, the key, and
        # "did you mean dicom_port?" for a near miss (gateway.cli.sentences).
        config_file = os.environ.get(CONFIG_ENV)
        raise StartupFailure(str(settings_error(exc, Settings, config_file)), EXIT_CONFIG) from None
    except (ValueError, OSError) as exc:  # TOML syntax errors are ValueErrors
        raise StartupFailure(
            f"The configuration file {name} could not be read: {exc}.", EXIT_CONFIG
        ) from None


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
