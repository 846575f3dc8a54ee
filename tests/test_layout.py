"""The shape of the code, kept by tests: no import cycle among the project's modules, the
layering of docs/architecture.md, and test support left out of the wheel.

Imports are read with `ast`, so imports under `if TYPE_CHECKING:` and inside functions count:
a cycle hidden from the interpreter is still a cycle for whoever reads the code.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gateway", "pacs", "jobs", "r4", "winservice", "testkit")
SHIPPED = ("gateway", "pacs", "jobs", "r4", "winservice")
# package -> top-level packages it must never import (docs/architecture.md, "never imports").
NEVER_IMPORTS = {
    "pacs": {"gateway", "jobs", "r4", "testkit"},
    "jobs": {"gateway", "pacs", "r4", "testkit"},
    "r4": {"gateway", "pacs", "jobs", "testkit"},
    # Runs one command line as a Windows service: it knows nothing of what it runs.
    "winservice": {"gateway", "pacs", "jobs", "r4", "testkit"},
    "gateway": {"testkit"},
}
TEST_SUPPORT = ("testkit", "fake_flynotes", "sample_data", "synthetic")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `name` imports: `from a import b` is a.b when that is a module."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in known else base)
    return {m for m in found if m in known and m != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def test_the_import_reader_sees_type_checking_and_function_imports(tmp_path):
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from gateway.service import Gateway\n"
        "def f():\n    from gateway.core import settings\n    import pacs.models\n"
    )
    known = {"gateway.service", "gateway.core", "gateway.core.settings", "pacs.models"}
    assert _imports("probe", source, known) == {
        "gateway.service",
        "gateway.core.settings",
        "pacs.models",
    }


def test_no_import_cycle_among_the_project_modules():
    graph = _graph()
    assert len(graph) > 100  # the whole project was read, not an empty folder
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        pytest.fail(f"import cycle: {cycle}")


def test_the_layers_import_only_what_docs_architecture_allows():
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in _graph().items()
        for target in targets
        if target.split(".")[0] in NEVER_IMPORTS.get(module.split(".")[0], set())
    )
    assert wrong == []


def test_the_wheel_ships_the_product_and_no_test_support(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in PACKAGES:  # testkit too: the build must leave it out by itself
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("pacs_gateway-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert [n for n in names if any(word in n for word in TEST_SUPPORT)] == []
    for package in SHIPPED:
        assert f"{package}/__init__.py" in names
    # Package data the running gateway reads from its own folders.
    for data in (
        "gateway/core/migrations/script.py.mako",
        "gateway/core/migrations/versions/0001_gateway_tables.py",
        "gateway/web/fallback.md",
        "gateway/cli/main.py",
    ):
        assert data in names
    assert any(n.startswith("gateway/web/templates/") for n in names)
    assert any(n.startswith("gateway/web/static/") for n in names)
    assert any(n.startswith("jobs/migrations/versions/") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert (
        "pacs-gateway = gateway.cli.main:app" in zipfile.ZipFile(wheel).read(entry_points).decode()
    )
