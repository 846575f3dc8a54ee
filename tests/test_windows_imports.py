"""Every module of the shipped packages imports on "Windows": run in a fresh interpreter with
sys.platform set to "win32", the POSIX-only signals (SIGHUP, SIGKILL, SIGUSR1, …) removed
from the signal module and Linux's TCP_QUICKACK from the socket module, as they are on
Windows. Third-party libraries are imported first, on the real platform: only our own
module-level code is under test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gateway", "pacs", "jobs", "r4", "winservice")
THIRD_PARTY = (
    "asyncio", "uvicorn", "fastapi", "starlette", "sqlalchemy", "alembic", "pydicom",
    "pynetdicom", "typer", "rich", "httpx", "boto3", "rollbar", "psutil", "PIL", "numpy",
    "jinja2", "tenacity", "rapidfuzz", "markdown_it", "psycopg", "itsdangerous",
    "pydantic_settings", "subprocess", "multiprocessing", "tempfile", "logging.handlers",
)  # fmt: skip
POSIX_ONLY_SIGNALS = ("SIGHUP", "SIGKILL", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCHLD", "SIGPIPE")
LINUX_ONLY_SOCKET_OPTIONS = ("TCP_QUICKACK",)

PROBE = """
import importlib, json, pkgutil, signal, socket, sys
third_party, signals, options, packages = json.loads(sys.argv[1])
for name in third_party:
    importlib.import_module(name)
for name in signals:
    if hasattr(signal, name):
        delattr(signal, name)
for name in options:
    if hasattr(socket, name):
        delattr(socket, name)
sys.platform = "win32"
imported, failed = [], []
for package in packages:
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        # winservice.windows needs pywin32 (Windows only); __main__ runs the CLI; migration
        # scripts run only inside Alembic.
        if info.name in ("winservice.windows", "gateway.__main__") or ".migrations." in info.name:
            continue
        try:
            importlib.import_module(info.name)
            imported.append(info.name)
        except Exception as exc:
            failed.append(f"{info.name}: {exc!r}")
print(json.dumps({"imported": imported, "failed": failed}))
"""


def test_every_module_imports_without_posix_only_signals_on_win32():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE,
            json.dumps([THIRD_PARTY, POSIX_ONLY_SIGNALS, LINUX_ONLY_SOCKET_OPTIONS, PACKAGES]),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["failed"] == []
    assert {"pacs.store", "gateway.practice", "gateway.cli", "winservice.supervisor"} <= set(
        report["imported"]
    )
