"""Periodic practice-side work: the bulk upload and the licence/version check.

Both run once on start and then every `interval` (an hour by default), as the connector this
replaces did. Nothing here starts by itself: the gateway builds a Scheduler only when the
practice side is configured, and runs it in a thread with `run_in_thread`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from r4.flynotes import FlynotesClient, LicenceInfo
from r4.handlers import LoggingReporter, Reporter, RestartRequested
from r4.selfupdate import AttemptRecord, UpdateSource, ensure_version, installed_version

log = logging.getLogger(__name__)

HOUR = 3600.0


@dataclass
class Task:
    name: str
    action: Callable[[], object]
    interval: float = HOUR  # seconds between the end of one run and the start of the next
    run_on_start: bool = True


class Scheduler:
    """Runs tasks one at a time on one thread. A failing task is reported and tried again at
    its next time; RestartRequested (a self-update) ends `run` and propagates."""

    def __init__(
        self,
        tasks: list[Task],
        *,
        reporter: Reporter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tasks = tasks
        self._reporter = reporter or LoggingReporter()
        self._clock = clock

    def run(self, stop: threading.Event) -> None:
        now = self._clock()
        due = {t.name: now if t.run_on_start else now + t.interval for t in self.tasks}
        while not stop.is_set():
            task = min(self.tasks, key=lambda t: due[t.name])
            if stop.wait(max(0.0, due[task.name] - self._clock())):
                return
            try:
                task.action()
            except RestartRequested:
                raise
            except Exception as exc:
                if stop.is_set():  # interrupted by shutdown, not a failure worth a report
                    log.info("%s stopped by shutdown (%s)", task.name, type(exc).__name__)
                    return
                self._reporter.report_exception(exc, extra={"where": f"scheduled {task.name}"})
            due[task.name] = self._clock() + task.interval


def licence_check(
    flynotes: FlynotesClient,
    *,
    drain: Callable[[], None],
    source: UpdateSource,
    dist_name: str = "pacs-gateway",
    on_licence: Callable[[LicenceInfo], None] | None = None,
    database_revisions: Callable[[], Iterable[str]] | None = None,
    state_file: Path | None = None,
) -> Callable[[], None]:
    """The hourly licence/version check as a task action: initialise with the licence key
    (this also proves Flynotes still recognises it), then self-update if the versions differ.

    `database_revisions` and `state_file`: see r4.selfupdate.ensure_version and AttemptRecord."""
    attempts = AttemptRecord(state_file)

    def check() -> None:
        current = installed_version(dist_name) or "0"
        info = flynotes.initialise(current)
        if on_licence is not None:
            on_licence(info)
        ensure_version(
            info.gateway_version,
            drain=drain,
            source=source,
            dist_name=dist_name,
            installed=current,
            database_revisions=database_revisions,
            attempts=attempts,
        )

    return check


def practice_tasks(
    *,
    bulk_upload: Callable[[], object],
    check_licence: Callable[[], None],
    bulk_interval: float = HOUR,
    licence_interval: float = HOUR,
) -> list[Task]:
    # Licence first: if an update is due there is no point uploading with the old version.
    return [
        Task("licence check", check_licence, licence_interval),
        Task("bulk upload", bulk_upload, bulk_interval),
    ]


def run_in_thread(
    name: str,
    run: Callable[[threading.Event], None],
    stop: threading.Event,
    on_restart: Callable[[RestartRequested], None],
) -> threading.Thread:
    """Start `run(stop)` in a daemon thread; a RestartRequested it raises goes to
    `on_restart` (which should stop the gateway and exit with `exc.exit_code`)."""

    def target() -> None:
        try:
            run(stop)
        except RestartRequested as exc:
            log.warning("%s: %s", name, exc)
            on_restart(exc)

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread
