"""`pacs-gateway`: check a PACS from a terminal and fetch studies by hand."""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from collections.abc import Callable
from datetime import date, timedelta
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import jobs
from gateway.cli.console import tolerate_unencodable_output
from gateway.cli.keys import keys_app
from gateway.cli.sentences import (
    CliError,
    SentenceTyper,
    fail,
    load_settings,
)
from gateway.cli.windows_service import service_app
from gateway.core.settings import CONFIG_ENV, Settings
from gateway.fetch.request import FetchRequest
from gateway.fetch.submit import FetchRefused
from gateway.prefetch.day import PrefetchUnavailable
from gateway.service import Gateway
from pacs.echo import echo as c_echo
from pacs.errors import PacsError
from pacs.models import Study, StudyQuery, require_literal
from pacs.query import find_studies

T = TypeVar("T")

app = SentenceTyper(
    help="pacs-gateway: fetch imaging studies from a PACS.",
    no_args_is_help=True,
    # Errors are one sentence (gateway.cli.sentences); --debug re-raises for the traceback.
    pretty_exceptions_enable=False,
)
app.add_typer(keys_app, name="keys")
app.add_typer(service_app, name="service")
console = Console()
# Sentences for the person at the terminal go to stderr, so stdout stays parseable (--json).
err_console = Console(stderr=True)

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


JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON on stdout instead of text, for scripts.")
]


def _version(value: bool) -> None:
    if value:
        print(f"pacs-gateway {installed_version('pacs-gateway')}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="On an error, show the traceback too.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    tolerate_unencodable_output()
    SentenceTyper.debug = debug
    logging.basicConfig(level=logging.INFO if verbose or debug else logging.WARNING)


@app.command()
def echo(config: ConfigOption = None, pacs: PacsOption = None, as_json: JsonOption = False) -> None:
    """C-ECHO the PACS and print the round trip."""
    settings = load_settings(config)
    peer = _or_exit(lambda: settings.peer(pacs))
    seconds = _or_exit(lambda: c_echo(peer, settings.ae_title))
    if as_json:
        print(json.dumps({"pacs": peer.label, "milliseconds": round(seconds * 1000, 1)}))
        return
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
    as_json: JsonOption = False,
) -> None:
    """List a patient's studies on the PACS."""
    settings = load_settings(config)
    peer = _or_exit(lambda: settings.peer(pacs))
    query = _query(patient_id, name, birth_date, date_from, date_to, modality)
    studies = _or_exit(lambda: find_studies(peer, settings.ae_title, query))
    if as_json:
        print(json.dumps([_study_json(s) for s in studies], indent=2))
        return
    _print_studies(studies)


@app.command()
def prefetch(
    config: ConfigOption = None,
    day: Annotated[
        str, typer.Option("--day", help="The appointment day, YYYY-MM-DD (default: tomorrow).")
    ] = "",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list the patients; fetch nothing.")
    ] = False,
) -> None:
    """Fetch, as background work, the recent studies of the patients of a day's appointments
    in R4, kept until the day has passed; with --dry-run, only list who comes in."""
    settings = load_settings(config)
    when = _or_exit(lambda: date.fromisoformat(day) if day else date.today() + timedelta(days=1))
    gateway = _or_exit(lambda: Gateway(settings))
    try:
        planned = gateway.plan_prefetch(when)
    except PrefetchUnavailable as exc:
        raise CliError(str(exc)) from None
    console.print(f"{when:%a} {when.day} {when:%b %Y}: {len(planned)} patients with appointments")
    for one in planned:
        console.print(f"  {one.starts_at:%H:%M}  R4 patient {one.r4_patient_id}", markup=False)
    if dry_run or not planned:
        return
    _or_exit(lambda: _dicom_port_free(settings))
    gateway.start_for_one_fetch()
    try:
        try:
            queued = gateway.prefetch(when)
        except FetchRefused as exc:
            raise CliError(str(exc)) from None
        finished = [_follow(gateway, job.id, hidden=False) for _, job in queued]
    finally:
        gateway.stop()
    ready = sum(1 for j in finished if j.state is jobs.JobState.SUCCEEDED)
    console.print(f"{ready} of {len(finished)} patients ready.")
    for (one, _), job in zip(queued, finished, strict=True):
        if job.state is not jobs.JobState.SUCCEEDED:
            console.print(f"  R4 patient {one.r4_patient_id}: {job.message}", markup=False)
    if ready < len(finished):
        raise typer.Exit(1)


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
    as_json: JsonOption = False,
) -> None:
    """Find a patient's studies and bring every image into the store, with progress.

    Runs the same fetch job `serve` runs (its matching, its index, its review queue), in this
    process, so what it brings in is filed exactly as a fetch asked of the gateway would be."""
    settings = load_settings(config)
    peer = _or_exit(lambda: settings.peer(pacs))
    query = _query(patient_id, name, birth_date, date_from, date_to, modality)
    if not patient_id:
        raise CliError(
            "fetch needs --patient-id (the patient's id on the PACS): a fetch by name alone could "
            "bring in another patient's studies; `find --name ... --birth-date ...` shows the id."
        )
    studies = _or_exit(lambda: find_studies(peer, settings.ae_title, query))
    if not studies:
        if as_json:
            print(json.dumps({"studies": [], "images": 0}))
        else:
            console.print("No study matches.")
        return
    if not as_json:
        _print_studies(studies)
    _or_exit(lambda: _dicom_port_free(settings))
    request = _or_exit(
        lambda: FetchRequest(
            pacs_patient_id=patient_id,
            pacs=pacs,
            date_from=query.date_from,
            date_to=query.date_to,
            modalities=list(query.modalities),
        )
    )
    gateway = _or_exit(lambda: Gateway(settings))
    gateway.start_for_one_fetch()
    try:
        try:
            job, _ = gateway.submit_fetch(request)
        except FetchRefused as exc:  # its message is the sentence
            raise CliError(str(exc)) from None
        job = _follow(gateway, job.id, hidden=as_json)
    finally:
        gateway.stop()
    progress = job.progress or {}
    studies_done = int(progress.get("studies_done", 0))
    images = int(progress.get("instances_received", 0))
    if as_json:
        print(
            json.dumps(
                {
                    "state": job.state.value,
                    "message": job.message,
                    "studies": [_study_json(s) for s in studies],
                    "images": images,
                },
                indent=2,
            )
        )
    elif job.state is jobs.JobState.SUCCEEDED:
        console.print(f"{studies_done} studies, {images} images in {settings.studies_dir}")
    else:
        console.print(job.message or job.state.value, markup=False)
    if job.state not in (jobs.JobState.SUCCEEDED, jobs.JobState.NEEDS_REVIEW):
        raise typer.Exit(1)


def _follow(gateway: Gateway, job_id: str, *, hidden: bool) -> jobs.Job:
    """Show the job's progress until it ends. A PACS that fails once ends it here: a person at
    a terminal wants the reason now, not retries for a day (`serve` retries)."""
    with _progress_bar(hidden=hidden) as bar:
        task = bar.add_task("Looking for the studies", total=None)
        # The total shown only grows: an early "0 expected" (before the PACS has counted)
        # must not turn "0/240" into "21/0".
        shown_total = 0
        while True:
            job = gateway.jobs.get(job_id)
            progress = job.progress or {}
            studies = int(progress.get("studies_total", 0))
            done = int(progress.get("studies_done", 0))
            received = int(progress.get("instances_received", 0))
            shown_total = max(shown_total, int(progress.get("instances_expected", 0)), received)
            if studies:
                bar.update(
                    task,
                    description=f"Fetching study {min(done + 1, studies)} of {studies}",
                    total=shown_total or None,
                    completed=received,
                )
            if job.state is jobs.JobState.WAITING_RETRY:
                gateway.jobs.request_cancel(job_id)
                raise CliError(without_retry(job.message or "The fetch failed."))
            if not job.active:
                return job
            time.sleep(FOLLOW_EVERY)


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

    settings = load_settings(config)
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
        fail(str(failure), failure.exit_code)
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
        if SentenceTyper.debug:
            raise
        # Our sentences are text, not rich markup: "[[pacs]]" and a trailing "\\" print as is.
        err_console.print(str(exc), style="red", markup=False, highlight=False)
        raise typer.Exit(1) from None


FOLLOW_EVERY = 0.2  # seconds between two reads of the job's progress


def without_retry(message: str) -> str:
    """A job message without the retry it will not get here ("Next try in 10 s (...)")."""
    return re.sub(r"\s*Next try in [^.]*\.?$", "", message).strip()


def _dicom_port_free(settings: Settings) -> None:
    """Refuse with a sentence when something (a running `serve` on this configuration) holds
    the gateway's DICOM port: C-MOVE would deliver there, not here."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the SCP binds: a port left in TIME_WAIT by an earlier run is free; one a
        # process listens on is not (Linux refuses that bind even with SO_REUSEADDR).
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.dicom_bind, settings.dicom_port))
        except OSError:
            raise CliError(
                f"Another process holds the gateway's DICOM port {settings.dicom_port}: most "
                "likely `pacs-gateway serve` runs on this configuration. Ask it for the fetch "
                "instead (the Fetch studies page, or POST /api/v1/fetches), or stop it first."
            ) from None


def _study_json(study: Study) -> dict[str, object]:
    return {
        "study_uid": study.study_uid,
        "date": study.study_date.isoformat() if study.study_date else None,
        "modalities": list(study.modalities),
        "description": study.description,
        "images": study.number_of_instances,
        "pacs_patient_id": study.patient.patient_id,
    }


def _print_studies(studies: list[Study]) -> None:
    table = Table("Date", "Modalities", "Description", "Images", "Patient ID")
    # Whole UIDs, on one line: a UID cut to "1.2.826.0.1…" cannot be copied or compared.
    table.add_column(
        "Study UID", no_wrap=True, min_width=max((len(s.study_uid) for s in studies), default=9)
    )
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


def _progress_bar(*, hidden: bool = False) -> Progress:
    return Progress(
        TextColumn("{task.description}:"),
        MofNCompleteColumn(),
        TextColumn("images"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err_console if hidden else console,
        disable=hidden,
    )
