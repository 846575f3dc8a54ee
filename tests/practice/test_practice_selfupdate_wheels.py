"""Self-update end to end with two real wheels of this project, built here: "1.0" (today's
migrations) and "1.1.0" (one more Alembic revision, g9999). Installed by the real pip into a
--target directory (no dependencies: they are this venv's), against a real SQLite database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.core.database import open_database
from gateway.core.migration_safety import DatabaseTooNew, database_revisions
from r4.handlers import RestartRequested
from r4.selfupdate import (
    AttemptRecord,
    UpdateRefused,
    UpdateSource,
    ensure_version,
    installed_version,
    wheel_revisions,
)

ROOT = Path(__file__).resolve().parents[2]
DUMMY_REVISION = '''"""A later version's migration (test only)."""

import sqlalchemy as sa
from alembic import op

revision = "g9999"
down_revision = "g0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("later_version_table", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("later_version_table")
'''


def _project_copy(dest: Path, version: str) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for package in ("gateway", "pacs", "jobs", "r4"):
        shutil.copytree(ROOT / package, dest / package, ignore=ignore)
    shutil.copy(ROOT / "README.md", dest / "README.md")
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    current = next(line for line in pyproject.splitlines() if line.startswith("version = "))
    (dest / "pyproject.toml").write_text(
        pyproject.replace(current, f'version = "{version}"', 1), encoding="utf-8"
    )
    return dest


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("selfupdate")
    old = _project_copy(base / "old", "1.0")
    new = _project_copy(base / "new", "1.1.0")
    (new / "gateway" / "core" / "migrations" / "versions" / "9999_later.py").write_text(
        DUMMY_REVISION
    )
    out = base / "wheels"
    for project in (old, new):
        built = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(project)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert built.returncode == 0, built.stderr[-3000:]
    return out


def _source(wheels: Path) -> UpdateSource:
    # --no-deps: the dependencies are this venv's; the private index would serve them.
    return UpdateSource(find_links=str(wheels), extra_pip_args=("--no-deps",))


def _migrate_with(target: Path, url: str) -> subprocess.CompletedProcess[str]:
    """Start the installed version's database code, as the restarted service would."""
    env = {**os.environ, "PYTHONPATH": str(target)}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, gateway.core.database as d; "
            "print(d.__file__); d.open_database(sys.argv[1])",
            url,
        ],
        env=env,
        cwd=target.parent,  # not the worktree: "" on sys.path would import today's code
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_wheels_list_their_migration_revisions(wheels):
    old = next(wheels.glob("pacs_gateway-1.0-*.whl"))
    new = next(wheels.glob("pacs_gateway-1.1.0-*.whl"))
    assert {"g0001", "g0002", "g0003"} <= wheel_revisions(old)
    assert "g9999" not in wheel_revisions(old)
    assert {"g0001", "g0002", "g0003", "g9999"} <= wheel_revisions(new)


def test_upgrade_then_a_downgrade_across_the_migration_is_refused(wheels, tmp_path):
    target = tmp_path / "site"
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    open_database(url).dispose()  # today's schema: ... g0003
    drained: list[str] = []
    attempts = AttemptRecord(tmp_path / "attempts.json")

    def update_to(version: str) -> None:
        ensure_version(
            version,
            drain=lambda: drained.append(version),
            source=_source(wheels),
            target=str(target),
            database_revisions=revisions,
            attempts=attempts,
        )

    def revisions() -> set[str]:
        engine = sa.create_engine(url)
        try:
            return database_revisions(engine)
        finally:
            engine.dispose()

    with pytest.raises(RestartRequested) as restart:
        update_to("1.1.0")
    assert restart.value.exit_code == 75
    assert installed_version("pacs-gateway", [str(target)]) == "1.1.0"

    # The restarted service (1.1.0) migrates the database to g9999, backing it up first.
    started = _migrate_with(target, url)
    assert started.returncode == 0, started.stderr
    assert started.stdout.startswith(str(target))
    assert "g9999" in revisions()
    backups = list(tmp_path.glob("gateway.db.before-migration-*.bak"))
    assert len(backups) == 1

    update_to("1.1")  # the same version written differently: nothing to do
    assert drained == ["1.1.0"]

    with pytest.raises(UpdateRefused, match="g9999"):
        update_to("1.0")
    assert installed_version("pacs-gateway", [str(target)]) == "1.1.0"
    assert _migrate_with(target, url).returncode == 0  # still starts

    # What the refusal prevents: today's code (which is "1.0") cannot open that database; it
    # says so in one sentence instead of Alembic's "Can't locate revision".
    with pytest.raises(DatabaseTooNew, match="newer version"):
        open_database(url)


def test_a_wheel_1_0_satisfies_flynotes_asking_for_1_0_0_once(wheels, tmp_path):
    target = tmp_path / "site"
    calls: list[str] = []

    def update() -> None:
        ensure_version(
            "1.0.0",
            drain=lambda: calls.append("drain"),
            source=_source(wheels),
            target=str(target),
            attempts=AttemptRecord(tmp_path / "attempts.json"),
        )

    with pytest.raises(RestartRequested):
        update()
    assert installed_version("pacs-gateway", [str(target)]) == "1.0"
    update()  # after the restart: no reinstall, no second restart
    assert calls == ["drain"]
