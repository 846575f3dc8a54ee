"""`pacs-gateway`: check a PACS from a terminal and fetch studies by hand."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gateway.cli.console import tolerate_unencodable_output
from gateway.cli.keys import keys_app
from gateway.cli.windows_service import service_app
from gateway.core.dicom_node import DicomNode
from gateway.core.settings import CONFIG_ENV, Settings
from gateway.service import Gateway
from pacs.echo import echo as c_echo
from pacs.errors import PacsError
from pacs.models import Study, StudyQuery, require_literal
from pacs.query import find_studies
from pacs.retrieve import Progress as RetrieveProgress

T = TypeVar("T")

app = typer.Typer(help="pacs-gateway: fetch imaging studies from a PACS.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(service_app, name="service")
console = Console()

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help=f"TOML settings file (or ${CONFIG_ENV}).")
]
PacsOption = Annotated[str | None, typer.Option("--pacs", help="Configured PACS name.")]
PatientIdOption = Annotated[str, typer.Option("--patient-id", help="PatientID on the PACS.")]
NameOption = Annotated[str, typer.Option("--name", help="PatientName, DICOM style: Family^Given.")]
BirthOption = Annotated[str, typer.Option("--birth-date", help="YYYY-MM-DD")]
FromOption = Annotated[str, typer.Option("--from", help="First study date, YYYY-MM-DD.")]
ToOption = Annotated[str, typer.Option("--to", help="Last study date, YYYY-MM-DD.")]
ModalityOption = Annotated[list[str] | None, typer.Option("--modality", help="e.g. CT; repeat.")]


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    tolerate_unencodable_output()
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING)


@app.command()
def echo(config: ConfigOption = None, pacs: PacsOption = None) -> None:
    """C-ECHO the PACS and print the round trip."""
    settings = _settings(config)
    peer = _or_exit(lambda: settings.peer(pacs))
    seconds = _or_exit(lambda: c_echo(peer, settings.ae_title))
    console.print(f"{peer.label} answered C-ECHO in {seconds * 1000:.0f} ms")


@app.command()
def find(
    config: ConfigOption = None,
    pacs: PacsOption = None,
    patient_id: PatientIdOption = "",
    name: NameOption = "",
    birth_date: BirthOption = "",
    date_from: FromOption = "",
    date_to: ToOption = "",
    modality: ModalityOption = None,
) -> None:
    """List a patient's studies on the PACS."""
    settings = _settings(config)
    peer = _or_exit(lambda: settings.peer(pacs))
    query = _query(patient_id, name, birth_date, date_from, date_to, modality)
    studies = _or_exit(lambda: find_studies(peer, settings.ae_title, query))
    _print_studies(studies)


@app.command()
def fetch(
    config: ConfigOption = None,
    pacs: PacsOption = None,
    patient_id: PatientIdOption = "",
    name: NameOption = "",
    birth_date: BirthOption = "",
    date_from: FromOption = "",
    date_to: ToOption = "",
    modality: ModalityOption = None,
) -> None:
    """Find a patient's studies and bring every image into the store, with progress."""
    settings = _settings(config)
    peer = _or_exit(lambda: settings.peer(pacs))
    query = _query(patient_id, name, birth_date, date_from, date_to, modality)
    studies = _or_exit(lambda: find_studies(peer, settings.ae_title, query))
    if not studies:
        console.print("No study matches.")
        return
    _print_studies(studies)
    with DicomNode(settings) as node, _progress_bar() as bar:
        total_images = 0
        for n, study in enumerate(studies, start=1):
            label = f"Fetching study {n} of {len(studies)}"
            task = bar.add_task(label, total=study.number_of_instances or None)

            def show(p: RetrieveProgress, task: int = task) -> None:
                bar.update(task, total=p.expected, completed=p.received)

            result = _or_exit(
                lambda s=study, cb=show: node.retriever.fetch_study(peer, s.study_uid, progress=cb)
            )
            total_images += result.expected
    console.print(f"{len(studies)} studies, {total_images} images in {settings.studies_dir}")


@app.command()
def check(
    config: ConfigOption = None,
    move_study: Annotated[
        str | None,
        typer.Option("--move-study", help="Study UID to C-MOVE back here (a small one)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of lines.")] = False,
) -> None:
    """Check R4, each PACS and the Flynotes licence, one line each; exit 1 on any failure."""
    from gateway.cli.check import render, run_install_checks

    settings = _settings(config)
    results = run_install_checks(settings, study_uid=move_study)
    typer.echo(render(results, as_json=as_json))
    if not all(r.ok for r in results):
        raise typer.Exit(1)


@app.command()
def serve(
    config: ConfigOption = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Job worker threads (default: settings).")
    ] = None,
) -> None:
    """Run the gateway: HTTP API, Storage SCP and job workers in one process."""
    import uvicorn

    from gateway.app import create_app
    from gateway.cli import startup
    from gateway.core import logs

    try:  # one sentence on stderr for every start-up failure (gateway/cli/startup.py)
        settings = startup.load_settings(config)
        logs.configure(settings.log_format)
        http_socket = startup.bind_http(settings.http_host, settings.http_port)
        startup.check_dicom_port(settings.dicom_bind, settings.dicom_port)
    except startup.StartupFailure as failure:
        startup.fail(failure)
    if workers is not None:
        settings.workers = workers
    gateway = _or_exit(lambda: Gateway(settings))
    # uvicorn turns SIGTERM/SIGINT into the app's shutdown, where the gateway finishes or
    # releases the jobs it holds. Its access log would write raw paths (patient ids): off.
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(gateway),
            host=settings.http_host,
            port=settings.http_port,
            access_log=False,
            log_level="info",
            log_config=None,  # uvicorn's lines go through gateway.core.logs like all others
            ssl_certfile=settings.ssl_certfile,
            ssl_keyfile=settings.ssl_keyfile,
        )
    )
    # A restart request (`restart` command, self-update) takes the same graceful shutdown
    # path as SIGTERM, without a signal: uvicorn would re-raise it and hide our exit code.
    gateway.practice.exit_through(lambda: setattr(server, "should_exit", True))
    server.run(sockets=[http_socket])
    if gateway.practice.exit_code is not None:
        # 75 (EX_TEMPFAIL): the service manager must start us again (docs/deployment.md).
        raise typer.Exit(gateway.practice.exit_code)


def _settings(config: Path | None) -> Settings:
    if config is not None:
        os.environ[CONFIG_ENV] = str(config)
    return _or_exit(Settings)


def _query(
    patient_id: str,
    name: str,
    birth_date: str,
    date_from: str,
    date_to: str,
    modality: list[str] | None,
) -> StudyQuery:
    def build() -> StudyQuery:
        # Values typed here are literals: a wildcard would list or fetch other patients.
        for option, value in (("--patient-id", patient_id), ("--name", name)):
            if value:
                require_literal(option, value)
        return StudyQuery(
            patient_id=patient_id,
            patient_name=name,
            birth_date=_date(birth_date, "--birth-date"),
            date_from=_date(date_from, "--from"),
            date_to=_date(date_to, "--to"),
            modalities=tuple(m.upper() for m in modality or ()),
        )

    return _or_exit(build)


def _date(value: str, option: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{option} takes a date as YYYY-MM-DD, not {value!r}") from None


def _or_exit(action: Callable[[], T]) -> T:
    try:
        return action()
    except (PacsError, LookupError, ValueError, FileNotFoundError) as exc:
        # Our sentences are text, not rich markup: "[[pacs]]" and a trailing "\\" print as is.
        console.print(str(exc), style="red", markup=False)
        raise typer.Exit(1) from None


def _print_studies(studies: list[Study]) -> None:
    table = Table("Date", "Modalities", "Description", "Images", "Patient ID", "Study UID")
    for s in studies:
        table.add_row(
            s.study_date.isoformat() if s.study_date else "",
            "/".join(s.modalities),
            s.description,
            str(s.number_of_instances or ""),
            s.patient.patient_id,
            s.study_uid,
        )
    console.print(table)


def _progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}:"),
        MofNCompleteColumn(),
        TextColumn("images"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
    )
