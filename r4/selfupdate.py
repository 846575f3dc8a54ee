"""Self-update: run exactly the gateway version Flynotes asks for (upgrade or downgrade), and
never loop or brick the service doing it.

Flynotes' licence answer names the version this practice should run. When it differs from the
installed one (compared as versions with `packaging.version`, so "1.0" is "1.0.0") we:
1. refuse unless the install source is configured explicitly (a private index or a directory of
   wheels): pip's default, the public index, is never used (dependency confusion);
2. call `drain()`, which returns once no job is running (the gateway stops claiming new jobs);
3. download that version's wheel (no dependencies) and read the Alembic revisions it ships; if
   the database's current revisions are not all among them, the version cannot open this
   database ("Can't locate revision") and is NOT installed (UpdateRefused);
4. `pip install` that wheel file, record the attempt, and check the installed version;
5. raise RestartRequested with UPDATE_EXIT_CODE (75): the process exits and the Windows
   service starts it again, now on the new version.

Invariants:
- A refused or failed update raises UpdateFailed and changes nothing installed, except a pip
  install that ran and left another version (then also UpdateFailed): never RestartRequested,
  so the service carries on with what it has.
- At most one install per wanted version: the attempt is recorded (in `state_file`, which
  survives the restart) and a later check that still finds another version installed raises
  UpdateLoopStopped without draining, installing or restarting. The record is cleared once the
  wanted version is the installed one.
- This module knows nothing of the gateway: the database's revisions come from a callable.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import logging
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from r4.handlers import RESTART_EXIT_CODE, RestartRequested

log = logging.getLogger(__name__)

UPDATE_EXIT_CODE = RESTART_EXIT_CODE
DIST_NAME = "pacs-gateway"


class UpdateFailed(RuntimeError):
    """The update did not happen (or did not take); the running version carries on."""


class UpdateRefused(UpdateFailed):
    """The update was not attempted because it would be unsafe; nothing was installed."""


class UpdateLoopStopped(UpdateFailed):
    """The wanted version was installed once already and still is not the one running."""


@dataclass(frozen=True)
class UpdateSource:
    """Where versions come from: a package index URL, or a directory of wheels (no index).

    One of the two is required: without it pip would use the public index."""

    index_url: str | None = None
    find_links: str | None = None
    extra_pip_args: tuple[str, ...] = ()

    @property
    def configured(self) -> bool:
        return bool(self.find_links or self.index_url)

    def pip_args(self) -> list[str]:
        if self.find_links:
            return ["--no-index", "--find-links", self.find_links, *self.extra_pip_args]
        if self.index_url:
            return ["--index-url", self.index_url, *self.extra_pip_args]
        raise UpdateRefused(
            "Self-update refused: no install source is configured; set update_index_url (a "
            "private package index) or update_find_links (a directory of wheels)."
        )


def parse_version(value: str) -> Version:
    try:
        return Version(value)
    except InvalidVersion:
        raise UpdateRefused(
            f"Self-update refused: {value[:40]!r} is not a version number; "
            "check the version set for this practice in Flynotes."
        ) from None


def same_version(installed: str | None, wanted: str) -> bool:
    if installed is None:
        return False
    try:
        return Version(installed) == parse_version(wanted)
    except InvalidVersion:
        return False


def installed_version(dist_name: str = DIST_NAME, path: Sequence[str] | None = None) -> str | None:
    """The installed version of `dist_name` (searching `path` if given), None if absent."""
    if path is None:
        try:
            return importlib.metadata.version(dist_name)
        except importlib.metadata.PackageNotFoundError:
            return None
    for dist in importlib.metadata.distributions(path=list(path)):
        if canonicalize_name(dist.metadata["Name"]) == canonicalize_name(dist_name):
            return dist.version
    return None


def wheel_revisions(wheel: Path) -> set[str]:
    """The Alembic revision ids a wheel ships: every `revision = "…"` of a module under a
    `migrations/versions/` directory, read from the zip without installing or importing it."""
    revisions: set[str] = set()
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            parts = name.split("/")
            if len(parts) < 3 or parts[-3:-1] != ["migrations", "versions"]:
                continue
            if not name.endswith(".py") or parts[-1] == "__init__.py":
                continue
            tree = ast.parse(archive.read(name), filename=name)
            for node in tree.body:
                value = _assigned(node, "revision")
                if isinstance(value, str):
                    revisions.add(value)
    return revisions


def _assigned(node: ast.stmt, name: str) -> object:
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AnnAssign):
        targets = [node.target]
    else:
        return None
    if not any(isinstance(t, ast.Name) and t.id == name for t in targets):
        return None
    return node.value.value if isinstance(node.value, ast.Constant) else None


def pip_install_command(
    version: str,
    source: UpdateSource,
    *,
    dist_name: str = DIST_NAME,
    python: str = sys.executable,
    target: str | None = None,
    wheel: Path | None = None,
) -> list[str]:
    """pip install of `dist_name==version`, or of that version's downloaded `wheel` file (its
    dependencies still come from `source` only)."""
    command = [
        python,
        "-m",
        "pip",
        "install",
        "--isolated",  # no pip.conf or PIP_* variable may add an index (e.g. the public one)
        "--disable-pip-version-check",
        "--no-input",
        *source.pip_args(),
    ]
    if target:
        # A --target install doesn't replace an existing version unless told to.
        command += ["--target", target, "--upgrade"]
    return [*command, str(wheel) if wheel is not None else f"{dist_name}=={version}"]


def pip_download_command(
    version: str,
    source: UpdateSource,
    dest: Path,
    *,
    dist_name: str = DIST_NAME,
    python: str = sys.executable,
) -> list[str]:
    return [
        python,
        "-m",
        "pip",
        "download",
        "--isolated",
        "--disable-pip-version-check",
        "--no-input",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--dest",
        str(dest),
        *source.pip_args(),
        f"{dist_name}=={version}",
    ]


def _run_pip(command: list[str], what: str, timeout: float) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        # pip's output says what went wrong and holds no patient data; keep the tail.
        log.error("%s failed:\n%s", what, result.stderr[-2000:])
        raise UpdateFailed(
            f"Self-update failed: {what} exited {result.returncode}; the current version keeps "
            "running and the next check tries again (see the log for pip's message)."
        )


def download_wheel(
    version: str,
    source: UpdateSource,
    dest: Path,
    *,
    dist_name: str = DIST_NAME,
    python: str = sys.executable,
    timeout: float = 600.0,
) -> Path:
    command = pip_download_command(version, source, dest, dist_name=dist_name, python=python)
    _run_pip(command, f"pip download {dist_name}=={version}", timeout)
    wheels = [p for p in dest.glob("*.whl") if _wheel_dist(p) == canonicalize_name(dist_name)]
    if len(wheels) != 1:
        raise UpdateFailed(
            f"Self-update failed: pip download of {dist_name}=={version} left "
            f"{len(wheels)} wheels; the current version keeps running."
        )
    return wheels[0]


def _wheel_dist(path: Path) -> str:
    return canonicalize_name(path.name.split("-")[0])


def install_version(
    version: str,
    source: UpdateSource,
    *,
    dist_name: str = DIST_NAME,
    python: str = sys.executable,
    target: str | None = None,
    wheel: Path | None = None,
    timeout: float = 600.0,
) -> None:
    command = pip_install_command(
        version, source, dist_name=dist_name, python=python, target=target, wheel=wheel
    )
    _run_pip(command, f"pip install {dist_name}=={version}", timeout)


def check_migrations(wheel: Path, version: str, database_revisions: Iterable[str]) -> None:
    """Refuse a version that does not know the database's current schema revision."""
    unknown = sorted(set(database_revisions) - wheel_revisions(wheel))
    if unknown:
        raise UpdateRefused(
            f"Self-update to {version} refused: the database is at schema revision "
            f"{', '.join(unknown)}, which {version} does not know, so it could not start; "
            "set this practice's version in Flynotes to one at least as new as the running one."
        )


class AttemptRecord:
    """The versions already installed once for this installation, kept in `path` (a small JSON
    file that survives the restart) or only in memory when `path` is None."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._memory: set[str] = set()

    def _load(self) -> set[str]:
        if self.path is None:
            return set(self._memory)
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return {str(v) for v in data.get("installed_once", [])}
        except (FileNotFoundError, ValueError, AttributeError):
            return set()

    def _save(self, versions: set[str]) -> None:
        self._memory = set(versions)
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_name(f".{self.path.name}.tmp")
        temp.write_text(json.dumps({"installed_once": sorted(versions)}), encoding="utf-8")
        _replace(temp, self.path)

    def attempted(self, version: str) -> bool:
        wanted = parse_version(version)
        return any(_equal(v, wanted) for v in self._load())

    def add(self, version: str) -> None:
        self._save(self._load() | {version})

    def clear(self) -> None:
        if self._load():
            self._save(set())


def _equal(recorded: str, wanted: Version) -> bool:
    try:
        return Version(recorded) == wanted
    except InvalidVersion:
        return False


def _replace(source: Path, target: Path) -> None:
    # On Windows os.replace fails while another process (an antivirus scan, a backup agent)
    # holds the target open; that passes within moments.
    for delay in (0.05, 0.2, 0.5, 1.0, None):
        try:
            source.replace(target)
            return
        except PermissionError:
            if delay is None:
                raise
            time.sleep(delay)


def ensure_version(
    wanted: str,
    *,
    drain: Callable[[], None],
    source: UpdateSource,
    dist_name: str = DIST_NAME,
    installed: str | None = None,
    python: str = sys.executable,
    target: str | None = None,
    database_revisions: Callable[[], Iterable[str]] | None = None,
    attempts: AttemptRecord | None = None,
) -> None:
    """Return if `wanted` is installed; otherwise drain, install it and raise RestartRequested.

    `installed` defaults to what importlib.metadata finds (in `target` when given).
    `database_revisions` returns the database's current Alembic revisions; a version whose
    wheel does not ship them all is refused. Raises UpdateFailed (or a subclass) whenever the
    running version must carry on.
    """
    current = (
        installed
        if installed is not None
        else installed_version(dist_name, [target] if target else None)
    )
    attempts = attempts if attempts is not None else AttemptRecord()
    parse_version(wanted)
    if same_version(current, wanted):
        attempts.clear()
        return
    if attempts.attempted(wanted):
        raise UpdateLoopStopped(
            f"Self-update to {wanted} stopped: it was installed once already, yet {current} is "
            "running; check which Python the service runs and where pip installs, then restart "
            "the service by hand."
        )
    if not source.configured:
        source.pip_args()  # raises UpdateRefused with the sentence
    log.warning("gateway version %s installed, Flynotes wants %s: updating", current, wanted)
    drain()
    with tempfile.TemporaryDirectory(prefix="pacs-gateway-update-") as temp:
        wheel = download_wheel(wanted, source, Path(temp), dist_name=dist_name, python=python)
        if database_revisions is not None:
            check_migrations(wheel, wanted, database_revisions())
        attempts.add(wanted)
        install_version(
            wanted, source, dist_name=dist_name, python=python, target=target, wheel=wheel
        )
    after = _installed_after(dist_name, python, target)
    if not same_version(after, wanted):
        raise UpdateFailed(
            f"Self-update to {wanted} did not take: pip succeeded but {after} is installed; "
            "the service carries on without restarting."
        )
    log.warning("installed %s %s; exiting with %d to restart", dist_name, wanted, UPDATE_EXIT_CODE)
    raise RestartRequested(f"updated {dist_name} to {wanted}", exit_code=UPDATE_EXIT_CODE)


def _installed_after(dist_name: str, python: str, target: str | None) -> str | None:
    if target is not None:
        return installed_version(dist_name, [target])
    # Ask the interpreter the service restarts with, not this process's metadata cache.
    result = subprocess.run(
        [
            python,
            "-c",
            "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))",
            dist_name,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.stdout.strip() or None if result.returncode == 0 else None
