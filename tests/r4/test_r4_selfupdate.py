"""Self-update against a local directory of two tiny throwaway wheels (never the real project),
installed with the real pip into a --target directory."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import sys
import zipfile
from pathlib import Path

import pytest

from r4.handlers import RestartRequested
from r4.selfupdate import (
    UPDATE_EXIT_CODE,
    AttemptRecord,
    UpdateFailed,
    UpdateLoopStopped,
    UpdateRefused,
    UpdateSource,
    ensure_version,
    installed_version,
    pip_install_command,
)

DIST = "r4-selfupdate-dummy"
MODULE = "r4_selfupdate_dummy"


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(directory: Path, version: str) -> Path:
    """A minimal valid wheel (PEP 427) for DIST at `version`, assembled by hand so no build
    backend or network is needed."""
    info = f"{MODULE}-{version}.dist-info"
    files = {
        f"{MODULE}/__init__.py": f'VERSION = "{version}"\n'.encode(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {DIST}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    path = directory / f"{MODULE}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
        record = [_record_line(n, d) for n, d in files.items()] + [f"{info}/RECORD,,"]
        wheel.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return path


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("wheels")
    build_wheel(directory, "1.0.0")
    build_wheel(directory, "1.1.0")
    return directory


def test_installs_the_wanted_version_after_draining_then_asks_for_restart(wheels, tmp_path):
    target = str(tmp_path / "site")
    source = UpdateSource(find_links=str(wheels))
    calls: list[str] = []

    with pytest.raises(RestartRequested) as first:
        ensure_version(
            "1.1.0",
            drain=lambda: calls.append("drain"),
            source=source,
            dist_name=DIST,
            target=target,
        )
    assert first.value.exit_code == UPDATE_EXIT_CODE == 75
    assert calls == ["drain"]
    assert installed_version(DIST, [target]) == "1.1.0"
    assert (Path(target) / MODULE / "__init__.py").read_text() == 'VERSION = "1.1.0"\n'

    # Already there: nothing drained, nothing installed, no restart.
    ensure_version(
        "1.1.0", drain=lambda: calls.append("drain"), source=source, dist_name=DIST, target=target
    )
    assert calls == ["drain"]

    # Downgrades too: Flynotes' version wins.
    with pytest.raises(RestartRequested):
        ensure_version(
            "1.0.0",
            drain=lambda: calls.append("drain"),
            source=source,
            dist_name=DIST,
            target=target,
        )
    assert installed_version(DIST, [target]) == "1.0.0"
    assert calls == ["drain", "drain"]


def test_missing_version_fails_without_restart(wheels, tmp_path):
    with pytest.raises(UpdateFailed):
        ensure_version(
            "9.9.9",
            drain=lambda: None,
            source=UpdateSource(find_links=str(wheels)),
            dist_name=DIST,
            target=str(tmp_path / "site"),
        )
    assert installed_version(DIST, [str(tmp_path / "site")]) is None


def test_drain_failure_stops_the_update(wheels, tmp_path):
    def drain() -> None:
        raise TimeoutError("jobs still running")

    with pytest.raises(TimeoutError):
        ensure_version(
            "1.1.0",
            drain=drain,
            source=UpdateSource(find_links=str(wheels)),
            dist_name=DIST,
            target=str(tmp_path / "site"),
        )
    assert installed_version(DIST, [str(tmp_path / "site")]) is None


def test_pip_command_for_an_index():
    command = pip_install_command("2.0.1", UpdateSource(index_url="https://pkgs.example/simple"))
    assert command[:3] == [sys.executable, "-m", "pip"]
    assert command[-3:] == ["--index-url", "https://pkgs.example/simple", "pacs-gateway==2.0.1"]


def test_versions_compare_as_versions_not_strings(wheels, tmp_path):
    target = str(tmp_path / "site")
    source = UpdateSource(find_links=str(wheels))
    with pytest.raises(RestartRequested):
        ensure_version("1.1", drain=lambda: None, source=source, dist_name=DIST, target=target)
    assert installed_version(DIST, [target]) == "1.1.0"

    def drain() -> None:
        raise AssertionError("1.1 is 1.1.0: no update")

    ensure_version("1.1", drain=drain, source=source, dist_name=DIST, target=target)
    ensure_version("1.1.0.0", drain=drain, source=source, dist_name=DIST, target=target)


def test_no_install_source_is_refused_before_draining(tmp_path):
    def drain() -> None:
        raise AssertionError("refused before draining")

    with pytest.raises(UpdateRefused, match="update_index_url"):
        ensure_version("1.1.0", drain=drain, source=UpdateSource(), dist_name=DIST, installed="1")
    with pytest.raises(UpdateRefused):
        pip_install_command("1.1.0", UpdateSource())


def test_a_version_that_is_not_a_version_is_refused():
    with pytest.raises(UpdateRefused, match="not a version number"):
        ensure_version(
            "latest",
            drain=lambda: None,
            source=UpdateSource(index_url="https://pkgs.example/simple"),
            installed="1.0.0",
        )


def test_an_install_that_does_not_take_never_restarts_and_is_not_retried(
    wheels, tmp_path, monkeypatch
):
    # pip "succeeds" but another version stays installed (e.g. it installed into another
    # environment than the service runs): restarting would only loop.
    monkeypatch.setattr("r4.selfupdate.install_version", lambda *a, **kw: None)
    target = str(tmp_path / "site")
    state = tmp_path / "attempts.json"
    drains: list[int] = []

    def update(record: AttemptRecord) -> None:
        ensure_version(
            "1.1.0",
            drain=lambda: drains.append(1),
            source=UpdateSource(find_links=str(wheels)),
            dist_name=DIST,
            target=target,
            attempts=record,
        )

    with pytest.raises(UpdateFailed, match="did not take") as first:
        update(AttemptRecord(state))
    assert not isinstance(first.value, UpdateLoopStopped)
    # The next check, and the next process (a new record read from the same file): reported,
    # nothing drained, installed or restarted.
    with pytest.raises(UpdateLoopStopped):
        update(AttemptRecord(state))
    assert drains == [1]
    assert installed_version(DIST, [target]) is None


def test_the_attempt_record_is_cleared_once_the_version_runs(tmp_path):
    record = AttemptRecord(tmp_path / "attempts.json")
    record.add("2.0")
    assert AttemptRecord(tmp_path / "attempts.json").attempted("2.0.0")
    ensure_version(
        "2.0.0",
        drain=lambda: None,
        source=UpdateSource(find_links=str(tmp_path)),
        installed="2.0",
        attempts=record,
    )
    assert not AttemptRecord(tmp_path / "attempts.json").attempted("2.0.0")


def test_installed_version_of_this_project():
    assert installed_version() == importlib.metadata.version("pacs-gateway")
    assert installed_version("surely-not-installed-dist") is None
