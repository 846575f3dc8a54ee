"""`pacs-gateway keys`: create, list and revoke API keys.

A key's plaintext is printed once, by `create`; only its hash is stored. A running gateway
notices a revocation within its key cache's lifetime (gateway.core.keys.CACHE_TTL_SECONDS).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from gateway.cli.sentences import load_settings
from gateway.core.database import open_database
from gateway.core.keys import CACHE_TTL_SECONDS, ROLES, KeyStore
from gateway.core.settings import CONFIG_ENV

T = TypeVar("T")

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
console = Console()
# Errors go to stderr so `create`'s stdout is the key alone when scripted.
errors = Console(stderr=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help=f"TOML settings file (or ${CONFIG_ENV}).")
]


@keys_app.command()
def create(
    name: Annotated[str, typer.Option("--name", help="Who uses the key, e.g. r4-sync.")],
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}.")],
    config: ConfigOption = None,
) -> None:
    """Create a key and print it once: it cannot be shown again."""
    store = _store(config)
    key, plaintext = _or_exit(lambda: store.create(name, role))
    errors.print(
        f"Created key {key.id} ({key.name}, role {key.role}). Store it now: it is shown only "
        "once and cannot be recovered."
    )
    # Plain print: no wrapping or markup, so the key can be copied or piped intact.
    print(plaintext)


@keys_app.command("list")
def list_keys(config: ConfigOption = None) -> None:
    """List keys (ids, names, roles; never secrets)."""
    keys = _store(config).list()
    if not keys:
        console.print("No API keys yet: create one with `pacs-gateway keys create`.")
        return
    table = Table("Id", "Name", "Role", "Created", "Status")
    for k in keys:
        status = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
        table.add_row(k.id, k.name, k.role, f"{k.created_at:%Y-%m-%d %H:%M}", status)
    console.print(table)


@keys_app.command()
def revoke(
    id_or_name: Annotated[str, typer.Argument(help="The key's id, or its name.")],
    config: ConfigOption = None,
) -> None:
    """Revoke a key. Running gateways refuse it within a few seconds."""
    key = _or_exit(lambda: _store(config).revoke(id_or_name))
    console.print(
        f"Revoked key {key.id} ({key.name}). Running gateways refuse it within "
        f"{CACHE_TTL_SECONDS:.0f} s."
    )


def _store(config: Path | None) -> KeyStore:
    settings = load_settings(config)
    assert settings.database_url is not None  # Settings fills in the SQLite default
    return KeyStore(open_database(settings.database_url))


def _or_exit(action: Callable[[], T]) -> T:
    try:
        return action()
    except (LookupError, ValueError, FileNotFoundError) as exc:
        errors.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
