"""Self-update: run exactly the gateway version Flynotes asks for (upgrade or downgrade).

Flynotes' licence answer names the version this practice should run. When it differs from
the installed one we:
1. call `drain()`, which returns once no job is running (the gateway stops claiming new jobs);
2. `python -m pip install <dist>==<version>` from the configured package index
   (`--index-url`) or a local directory of wheels (`--find-links` with `--no-index`);
3. raise RestartRequested with UPDATE_EXIT_CODE (75): the process exits and the Windows
   service manager starts it again, now on the new version.
If pip fails, nothing was changed (pip installs atomically per distribution) and the error
propagates: the current version keeps running and the next hourly check tries again.
"""

from __future__ import annotations

import importlib.metadata
import logging
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from r4.handlers import RESTART_EXIT_CODE, RestartRequested

log = logging.getLogger(__name__)

UPDATE_EXIT_CODE = RESTART_EXIT_CODE
DIST_NAME = "pacs-gateway"


class UpdateFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class UpdateSource:
    """Where versions come from: a package index URL, or a directory of wheels (no index)."""

    index_url: str | None = None
    find_links: str | None = None
    extra_pip_args: tuple[str, ...] = ()

    def pip_args(self) -> list[str]:
        if self.find_links:
            return ["--no-index", "--find-links", self.find_links, *self.extra_pip_args]
        if self.index_url:
            return ["--index-url", self.index_url, *self.extra_pip_args]
        return list(self.extra_pip_args)


def installed_version(dist_name: str = DIST_NAME, path: Sequence[str] | None = None) -> str | None:
    """The installed version of `dist_name` (searching `path` if given), None if absent."""
    if path is None:
        try:
            return importlib.metadata.version(dist_name)
        except importlib.metadata.PackageNotFoundError:
            return None
    for dist in importlib.metadata.distributions(path=list(path)):
        if _normalise(dist.metadata["Name"]) == _normalise(dist_name):
            return dist.version
    return None


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def pip_install_command(
    version: str,
    source: UpdateSource,
    *,
    dist_name: str = DIST_NAME,
    python: str = sys.executable,
    target: str | None = None,
) -> list[str]:
    command = [
        python,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        *source.pip_args(),
    ]
    if target:
        # A --target install doesn't replace an existing version unless told to.
        command += ["--target", target, "--upgrade"]
    return [*command, f"{dist_name}=={version}"]


def install_version(
    version: str,
    source: UpdateSource,
    *,
    dist_name: str = DIST_NAME,
    python: str = sys.executable,
    target: str | None = None,
    timeout: float = 600.0,
) -> None:
    command = pip_install_command(
        version, source, dist_name=dist_name, python=python, target=target
    )
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        # pip's output says what went wrong and holds no patient data; keep the tail.
        log.error("pip install %s==%s failed:\n%s", dist_name, version, result.stderr[-2000:])
        raise UpdateFailed(f"pip install {dist_name}=={version} exited {result.returncode}")


def ensure_version(
    wanted: str,
    *,
    drain: Callable[[], None],
    source: UpdateSource,
    dist_name: str = DIST_NAME,
    installed: str | None = None,
    python: str = sys.executable,
    target: str | None = None,
) -> None:
    """Return if `wanted` is installed; otherwise drain, install it and raise RestartRequested.

    `installed` defaults to what importlib.metadata finds (in `target` when given).
    """
    current = (
        installed
        if installed is not None
        else installed_version(dist_name, [target] if target else None)
    )
    if current == wanted:
        return
    log.warning("gateway version %s installed, Flynotes wants %s: updating", current, wanted)
    drain()
    install_version(wanted, source, dist_name=dist_name, python=python, target=target)
    log.warning("installed %s %s; exiting with %d to restart", dist_name, wanted, UPDATE_EXIT_CODE)
    raise RestartRequested(f"updated {dist_name} to {wanted}", exit_code=UPDATE_EXIT_CODE)
