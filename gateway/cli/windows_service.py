"""`pacs-gateway service install | remove | start | stop | status`: the gateway as a Windows
service, through the gateway-agnostic `winservice` package.

What is registered is decided by `build_spec` (plain data, tested on any platform); the calls
to the Service Control Manager happen only on Windows, in winservice.windows (pywin32, the
`windows` extra). On other platforms every command but `install --dry-run` says so and exits 1.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer
from rich.console import Console

from winservice.spec import LogRotation, ServiceSpec

service_app = typer.Typer(
    help="Run the gateway as a Windows service (Windows only).", no_args_is_help=True
)
console = Console()

DEFAULT_NAME = "PacsGateway"
WINDOWS_ONLY = (
    "The service commands work only on Windows; on Linux run `pacs-gateway serve` under "
    "systemd (docs/deployment.md)."
)

NameOption = Annotated[str, typer.Option("--name", help="Windows service name.")]


def build_spec(
    config: Path,
    *,
    account: str | None,
    name: str = DEFAULT_NAME,
    log_dir: Path | None = None,
    python: str = sys.executable,
) -> ServiceSpec:
    """The service that runs `pacs-gateway serve --config <config>` with this Python."""
    config = config.absolute()
    logs = (log_dir or config.parent / "logs").absolute()
    return ServiceSpec(
        name=name,
        display_name="PACS Gateway" if name == DEFAULT_NAME else f"PACS Gateway ({name})",
        description=(
            "Fetches imaging studies from the PACS for Carestream R4 and Flynotes "
            f"(pacs-gateway serve --config {config})."
        ),
        command=(python, "-m", "gateway", "serve", "--config", str(config)),
        working_dir=config.parent,
        account=account,
        log=LogRotation(logs / f"{name.lower()}.log"),
    )


def _windows() -> ModuleType:
    if sys.platform != "win32":
        console.print(WINDOWS_ONLY, markup=False, soft_wrap=True)
        raise typer.Exit(1)
    try:
        from winservice import windows
    except ImportError:
        console.print(
            'pywin32 is not installed: run `pip install "pacs-gateway[windows]"`, then '
            "`python Scripts\\pywin32_postinstall.py -install` as Administrator.",
            markup=False,
        )
        raise typer.Exit(1) from None
    return windows


@service_app.command()
def install(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The gateway.toml the service runs with.")
    ],
    account: Annotated[
        str | None,
        typer.Option(
            "--account",
            help="DOMAIN\\user with Windows-authenticated access to the R4 SQL Server "
            "(default LocalSystem, which normally has none).",
        ),
    ] = None,
    name: NameOption = DEFAULT_NAME,
    log_dir: Annotated[
        Path | None, typer.Option("--log-dir", help="Default: logs/ next to the config.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would be registered; change nothing.")
    ] = False,
) -> None:
    """Register the service: starts at boot, restarted on exit 75 and after any crash."""
    spec = build_spec(config, account=account, name=name, log_dir=log_dir)
    if dry_run:
        for label, value in spec.describe():
            console.print(f"{label}: {value}", markup=False, soft_wrap=True)
        return
    if not config.is_file():
        console.print(
            f"{config} does not exist: write the configuration first.", markup=False, soft_wrap=True
        )
        raise typer.Exit(1)
    windows = _windows()
    password = typer.prompt(f"Password of {account}", hide_input=True) if account else None
    windows.install(spec, password)
    console.print(f"Installed service {spec.name}; start it with `pacs-gateway service start`.")


@service_app.command()
def remove(name: NameOption = DEFAULT_NAME) -> None:
    """Unregister the service (stop it first)."""
    _windows().remove(name)
    console.print(f"Removed service {name}.")


@service_app.command()
def start(name: NameOption = DEFAULT_NAME) -> None:
    """Start the service."""
    _windows().start(name)
    console.print(f"Started service {name}.")


@service_app.command()
def stop(name: NameOption = DEFAULT_NAME) -> None:
    """Stop the service: the gateway finishes or hands back its jobs, then exits."""
    _windows().stop(name)
    console.print(f"Asked service {name} to stop.")


@service_app.command()
def status(name: NameOption = DEFAULT_NAME) -> None:
    """Print whether the service is running."""
    console.print(f"{name}: {_windows().status(name)}")
