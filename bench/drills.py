"""Drills that prove the gateway survives what a practice will throw at it, and print figures.

    python bench/drills.py all                 # every drill, full form
    python bench/drills.py crash --rounds 20   # SIGKILL `serve` at random moments mid-fetch
    python bench/drills.py outage              # PACS down mid-retrieve, refusing, past the budget
    python bench/drills.py load --jobs 50      # concurrent jobs, association limit, poll p99
    python bench/drills.py fuzz --examples 100 # schemathesis on the API; malformed DICOM on the SCP
    python bench/drills.py security            # keys, logs and Rollbar free of patient data, paths
    python bench/drills.py hostile             # size bombs and broken headers; peak RSS of serve

Each drill is a function with its knobs as parameters; tests/drills runs the short forms
against the pytest Orthanc, this script runs the full forms against an Orthanc of its own
(Debian's `orthanc`, loaded with the synthetic demo studies). A drill raises DrillFailure
when what it proves does not hold, after printing the figures it measured.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import random
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _folder in (ROOT, ROOT / "orthanc-test", ROOT / "tests" / "gateway"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

import demo_studies  # noqa: E402
import httpx  # noqa: E402
from demo_studies import DemoCatalog  # noqa: E402
from dicom_bytes import dataset_body  # noqa: E402
from gateway_testkit import gateway_settings  # noqa: E402
from orthanc_server import HOST, OrthancServer, free_port, wait_until  # noqa: E402
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.filewriter import write_file_meta_info  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian  # noqa: E402
from pynetdicom import AE, _config  # noqa: E402
from pytest_orthanc import GATEWAY_AET, GATEWAY_MODALITY  # noqa: E402
from serve_process import ServeProcess  # noqa: E402

from gateway.core.keys import KeyStore  # noqa: E402
from gateway.core.settings import Settings  # noqa: E402
from gateway.fetch.request import FetchRequest  # noqa: E402
from gateway.service import Gateway  # noqa: E402

OUTSIDE_ID = demo_studies.SAME_PERSON_IDS[1]  # 240-slice CT + 3-series MR
SMALL_PATIENTS = (
    demo_studies.LATIN1_PATIENT_ID,
    demo_studies.UTF8_PATIENT_ID,
    demo_studies.SAME_PERSON_IDS[0],
    demo_studies.COMPOUND_NAME_PATIENT_ID,
    demo_studies.TWIN_IDS[0],
)
FINISHED = ("succeeded", "failed", "cancelled", "needs_review")
Say = Callable[[str], None]


class DrillFailure(AssertionError):
    """What the drill proves did not hold; the message says what was seen."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise DrillFailure(message)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait on a condition with a deadline (never a bare sleep as synchronisation)."""
    if not wait_until(condition, timeout, interval=0.05):
        raise DrillFailure(f"timed out after {timeout:g} s waiting for {what}")


@dataclass
class DrillEnv:
    """What every drill runs against: a loaded Orthanc that knows the gateway at `scp_port`."""

    orthanc: OrthancServer
    catalog: DemoCatalog
    work: Path
    scp_port: int
    say: Say = print

    def settings(self, name: str, **overrides: Any) -> Settings:
        values: dict[str, Any] = {"workers": 2, "lease_seconds": 3.0, **overrides}
        port = values.pop("dicom_port", self.scp_port)
        orthanc = values.pop("orthanc", self.orthanc)
        return gateway_settings(self.work / name, port, orthanc, **values)


def api_key(settings: Settings, role: str = "admin", name: str = "drill") -> str:
    engine = Gateway(settings).engine
    try:
        _key, plaintext = KeyStore(engine).create(name, role)
    finally:
        engine.dispose()
    return plaintext


@contextlib.contextmanager
def serving(settings: Settings, workdir: Path, name: str) -> Iterator[ServeProcess]:
    """A `serve` process for the block; killed if the block did not stop it itself."""
    workdir.mkdir(parents=True, exist_ok=True)
    process = ServeProcess(settings, workdir, name)
    try:
        process.start()
        yield process
    finally:
        process.kill()


def body_digest(data: bytes) -> str:
    return hashlib.sha256(dataset_body(data)).hexdigest()


def orthanc_digests(orthanc: OrthancServer, sop_uids: Sequence[str]) -> dict[str, str]:
    return {uid: body_digest(orthanc.instance_file(uid)) for uid in sop_uids}


@dataclass
class StoreAudit:
    checked: int = 0
    lost: int = 0
    duplicated: int = 0
    corrupt: int = 0
    stray: int = 0  # files that are not an expected instance, or not at their place
    incoming: int = 0  # temp files left in <store>/.incoming

    def add(self, other: StoreAudit) -> None:
        for name in ("checked", "lost", "duplicated", "corrupt", "stray", "incoming"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.corrupt or self.stray or self.incoming)


def audit_store(gateway: Gateway, expected: dict[str, str], *, incoming: bool = True) -> StoreAudit:
    """Every expected instance present exactly once, at its place, byte-identical (dataset)."""
    store = gateway.node.store
    files = [p for p in store.root.rglob("*") if p.is_file() and ".incoming" not in p.parts]
    stems = Counter(p.stem for p in files)
    audit = StoreAudit(checked=len(expected))
    audit.lost = sum(1 for uid in expected if uid not in stems)
    audit.duplicated = sum(n - 1 for n in stems.values() if n > 1)
    audit.stray = sum(1 for p in files if p.suffix != ".dcm" or p.stem not in expected)
    for path in files:
        if path.stem in expected and body_digest(path.read_bytes()) != expected[path.stem]:
            audit.corrupt += 1
    if incoming:
        audit.incoming = sum(1 for p in store.incoming.iterdir() if p.is_file())
    return audit


# -- crash drill ------------------------------------------------------------------------------


@dataclass
class CrashFigures:
    rounds: int = 0
    kills_mid_fetch: int = 0
    waves: int = 0
    jobs: int = 0
    jobs_failed: int = 0
    instances_checked: int = 0
    lost: int = 0
    duplicated: int = 0
    corrupt: int = 0
    stray: int = 0
    incoming_left: int = 0
    seconds: float = 0.0


def crash_drill(
    env: DrillEnv,
    rounds: int = 3,
    *,
    seed: int = 20240520,
    patients: Sequence[str] = (OUTSIDE_ID, demo_studies.LATIN1_PATIENT_ID),
    kill_after: tuple[float, float] = (0.1, 2.5),
    lease_seconds: float = 2.0,
) -> CrashFigures:
    """SIGKILL `serve` `rounds` times at seeded random moments while it fetches several
    patients' studies, restarting it each time; when a wave of jobs completes it is audited
    and a new wave starts in a fresh data folder, so every round kills real work."""
    rng = random.Random(seed)
    started = time.perf_counter()
    figures = CrashFigures()
    studies = [s for p in patients for s in env.catalog.studies_for(p)]
    expected = orthanc_digests(env.orthanc, [u for s in studies for u in s.sop_instance_uids])
    audit = StoreAudit()
    wave: tuple[Settings, Gateway, list[str]] | None = None

    def new_wave() -> tuple[Settings, Gateway, list[str]]:
        figures.waves += 1
        settings = env.settings(f"crash-{figures.waves}", lease_seconds=lease_seconds)
        submitter = Gateway(settings)  # not started: its database and store only
        ids = [submitter.submit_fetch(FetchRequest(pacs_patient_id=p))[0].id for p in patients]
        figures.jobs += len(ids)
        return settings, submitter, ids

    def finish_wave(submitter: Gateway, ids: list[str]) -> None:
        jobs_now = [submitter.jobs.get(i) for i in ids]
        figures.jobs_failed += sum(1 for j in jobs_now if j.state != "succeeded")
        wave_audit = audit_store(submitter, expected)
        audit.add(wave_audit)
        for study in studies:  # the index agrees with the store: each instance counted once
            indexed = submitter.index.study(study.study_uid)
            if indexed is None or indexed.instance_count != study.instance_count:
                audit.duplicated += 1
        submitter.engine.dispose()

    def all_done(submitter: Gateway, ids: list[str]) -> bool:
        return all(submitter.jobs.get(i).state in FINISHED for i in ids)

    while figures.rounds < rounds:
        if wave is None:
            wave = new_wave()
        settings, submitter, ids = wave
        workdir = env.work / f"crash-{figures.waves}"
        with serving(settings, workdir, f"serve-{figures.rounds}") as process:
            pid = str(process.process.pid if process.process else "")
            if all_done(submitter, ids):
                # The wave ended before the last kill. This start removed the dead process's
                # temp files; a graceful stop then leaves .incoming as a finished run would.
                check(process.stop(), f"serve did not stop gracefully:\n{process.log_tail()}")
                finish_wave(submitter, ids)
                wave = None
                continue

            def claimed(
                submitter: Gateway = submitter, ids: list[str] = ids, pid: str = pid
            ) -> bool:
                found = [submitter.jobs.get(i) for i in ids]
                return all(j.state in FINISHED for j in found) or any(
                    j.state == "running" and pid in (j.lease_owner or "") for j in found
                )

            # Wait for this process to hold a job (the dead one's lease must expire first);
            # then the random moment: that is the drill, not synchronisation.
            wait_for(claimed, 30 + lease_seconds, "the restarted serve to claim a job")
            if not all_done(submitter, ids):
                figures.kills_mid_fetch += 1
            time.sleep(rng.uniform(*kill_after))
            process.kill()
        figures.rounds += 1
        env.say(f"  round {figures.rounds}/{rounds}: killed serve (wave {figures.waves})")

    if wave is not None:  # recover the last wave
        settings, submitter, ids = wave
        with serving(settings, env.work / f"crash-{figures.waves}", "serve-final") as process:
            wait_for(lambda: all_done(submitter, ids), 180, "the jobs to finish after the kills")
            check(process.stop(), f"serve did not stop gracefully:\n{process.log_tail()}")
        finish_wave(submitter, ids)

    figures.instances_checked = audit.checked
    figures.lost, figures.duplicated, figures.corrupt = audit.lost, audit.duplicated, audit.corrupt
    figures.stray, figures.incoming_left = audit.stray, audit.incoming
    figures.seconds = round(time.perf_counter() - started, 1)
    _print("crash drill", figures, env.say)
    check(figures.jobs_failed == 0, f"{figures.jobs_failed} jobs did not succeed")
    check(audit.clean, f"the store is not what Orthanc holds: {figures}")
    return figures


# -- outage drill -----------------------------------------------------------------------------


@dataclass
class OutageFigures:
    waiting_message: str = ""
    ready_detail: str = ""
    recovered_seconds: float = 0.0
    instances_checked: int = 0
    refused_message: str = ""
    wrong_ae_message: str = ""
    gave_up_message: str = ""


def outage_drill(
    env: DrillEnv,
    make_orthanc: Callable[..., OrthancServer],
    *,
    down_after_instances: int = 20,
    budget_attempts: int = 2,
) -> OutageFigures:
    """A fresh Orthanc (the shared one stays undisturbed) goes down mid-retrieve and comes
    back; then it refuses (gateway unknown to it, wrong called AE); then a job runs out of
    retries. Each time the job's message is what staff read: it must tell them what happens
    or what to do."""
    figures = OutageFigures()
    scp_port = free_port()
    pacs = make_orthanc(modalities={GATEWAY_MODALITY: (GATEWAY_AET, HOST, scp_port)})
    ct = env.catalog.study("dubois-ext-cbct-2023")
    io_study = env.catalog.study("muller-io-2021")
    # Through REST: loading is not what this drill tests, and it keeps the dataset bytes.
    pacs.upload([*ct.files, *io_study.files])
    settings = env.settings(
        "outage", orthanc=pacs, dicom_port=scp_port, workers=1, retry_max_attempts=30
    )
    gateway = Gateway(settings)
    gateway.start()
    try:
        # 1. Down mid-retrieve, back later: waiting_retry with the sentence, then success.
        job, _ = gateway.submit_fetch(FetchRequest(pacs_patient_id=OUTSIDE_ID, modalities=["CT"]))
        wait_for(
            lambda: (
                gateway.jobs.get(job.id).progress.get("instances_received", 0)
                >= down_after_instances
            ),
            60,
            "the CT retrieve to be under way",
        )
        pacs.kill()
        went_down = time.perf_counter()

        def unreachable_wait() -> bool:
            now = gateway.jobs.get(job.id)
            return now.state == "waiting_retry" and "could not be reached" in now.message

        wait_for(unreachable_wait, 30, "waiting_retry with 'could not be reached'")
        figures.waiting_message = gateway.jobs.get(job.id).message
        check("Next try in" in figures.waiting_message, figures.waiting_message)
        readiness = gateway.readiness()
        figures.ready_detail = readiness.checks["pacs:test-orthanc"].detail
        check(not readiness.ok and "could not be reached" in figures.ready_detail, "ready")
        pacs.start()
        wait_for(lambda: gateway.jobs.get(job.id).state in FINISHED, 90, "the job after the outage")
        done = gateway.jobs.get(job.id)
        check(done.state == "succeeded", f"after the outage: {done.state}: {done.message}")
        figures.recovered_seconds = round(time.perf_counter() - went_down, 1)
        expected = orthanc_digests(pacs, ct.sop_instance_uids)
        ct_audit = audit_store(gateway, expected, incoming=False)
        figures.instances_checked = ct_audit.checked
        check(ct_audit.clean, f"after the outage the store differs from the PACS: {ct_audit}")

        # 2. Refusing: Orthanc no longer knows the gateway as a move destination.
        pacs.remove_modality(GATEWAY_MODALITY)
        refused, _ = gateway.submit_fetch(FetchRequest(pacs_patient_id=io_study.patient_id))

        def refusal_reported() -> bool:
            # Orthanc answers a bare 0xC000, which may clear by itself, so the job waits to
            # retry; what matters is that its message says what to fix.
            now = gateway.jobs.get(refused.id)
            return now.state in ("waiting_retry", "failed") and "move destination" in now.message

        wait_for(refusal_reported, 60, "the refused job's message")
        figures.refused_message = gateway.jobs.get(refused.id).message
        gateway.jobs.request_cancel(refused.id)
        pacs.add_modality(GATEWAY_MODALITY, GATEWAY_AET, HOST, scp_port)
    finally:
        gateway.stop(timeout=5)
        gateway.engine.dispose()

    # 3. Wrong called AE title: Orthanc checks it and rejects the association.
    wrong = env.settings("outage-wrong-ae", orthanc=pacs, dicom_port=free_port(), workers=1)
    wrong.pacs[0].ae_title = "NOTORTHANC"
    figures.wrong_ae_message = _one_job_message(wrong, io_study.patient_id, "failed")
    check("Check the PACS's AE title" in figures.wrong_ae_message, figures.wrong_ae_message)

    # 4. Past the retry budget: the PACS stays down.
    pacs.kill()
    budget = env.settings(
        "outage-budget",
        orthanc=pacs,
        dicom_port=free_port(),
        workers=1,
        retry_max_attempts=budget_attempts,
        retry_initial_delay=0.2,
        retry_max_delay=0.2,
    )
    figures.gave_up_message = _one_job_message(budget, io_study.patient_id, "failed")
    check("could not be reached" in figures.gave_up_message, figures.gave_up_message)
    check(f"Gave up after {budget_attempts} attempts" in figures.gave_up_message, "budget")
    check("retry" in figures.gave_up_message.lower().split("gave up")[0], "no advice")
    _print("outage drill", figures, env.say)
    return figures


def _one_job_message(settings: Settings, patient_id: str, state: str) -> str:
    gateway = Gateway(settings)
    gateway.start()
    try:
        job, _ = gateway.submit_fetch(FetchRequest(pacs_patient_id=patient_id))
        wait_for(lambda: gateway.jobs.get(job.id).state in FINISHED, 60, f"a {state} job")
        final = gateway.jobs.get(job.id)
        check(final.state == state, f"expected {state}, got {final.state}: {final.message}")
        return final.message
    finally:
        gateway.stop(timeout=5)
        gateway.engine.dispose()


# -- load drill -------------------------------------------------------------------------------


class PduWatch:
    """Follows the PDU boundaries of one direction of a DICOM connection (PS3.8 9.3:
    type, reserved, 4-byte length) and reports the types of PDUs that begin."""

    def __init__(self) -> None:
        self._header = b""
        self._left = 0

    def types(self, data: bytes) -> list[int]:
        seen: list[int] = []
        view = memoryview(data)
        while view:
            if self._left:
                step = min(self._left, len(view))
                self._left -= step
                view = view[step:]
                continue
            need = 6 - len(self._header)
            self._header += bytes(view[:need])
            view = view[need:]
            if len(self._header) == 6:
                seen.append(self._header[0])
                self._left = int.from_bytes(self._header[2:6], "big")
                self._header = b""
        return seen


A_RELEASE_RP, A_ABORT = 0x06, 0x07


class ConnectionCounter:
    """A TCP relay in front of the PACS's DICOM port that counts concurrent associations.

    Each association is one TCP connection; only the gateway's own pass through here
    (C-MOVE sub-operations go from the PACS to the SCP). An association counts as ended
    when its A-RELEASE-RP (or an A-ABORT) passes the relay, *before* it is forwarded: the
    gateway frees its slot only after receiving it, so a connection that follows cannot be
    counted while the previous one is still being torn down."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server((HOST, 0))
        self.port = int(self.listener.getsockname()[1])
        self.current = 0
        self.peak = 0
        self.total = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> ConnectionCounter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self.listener.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self.current += 1
                self.total += 1
                self.peak = max(self.peak, self.current)
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        ended = False

        def end() -> None:
            nonlocal ended
            if not ended:
                ended = True
                with self._lock:
                    self.current -= 1

        try:
            with client, socket.create_connection(self.target) as upstream:
                pair = {client: upstream, upstream: client}
                watch = {client: PduWatch(), upstream: PduWatch()}
                while True:
                    readable, _, _ = select.select(list(pair), [], [], 1.0)
                    if self._closing.is_set():
                        return
                    for sock in readable:
                        data = sock.recv(65536)
                        if not data:
                            return
                        kinds = watch[sock].types(data)
                        if A_ABORT in kinds or (sock is upstream and A_RELEASE_RP in kinds):
                            end()
                        pair[sock].sendall(data)
        except OSError:
            pass
        finally:
            end()


@dataclass
class LoadFigures:
    jobs: int = 0
    succeeded: int = 0
    association_failures: int = 0
    max_associations: int = 0
    peak_associations: int = 0
    associations_opened: int = 0
    polls: int = 0
    poll_p50_ms: float = 0.0
    poll_p99_ms: float = 0.0
    seconds: float = 0.0


def load_requests(count: int) -> list[FetchRequest]:
    """`count` requests over 5 patients, each with its own dedupe key (date and modality)."""
    variants = [
        (f"{2010 + i}-01-01", modalities) for i in range(20) for modalities in ([], ["PX", "IO"])
    ]
    return [
        FetchRequest(
            pacs_patient_id=SMALL_PATIENTS[n % len(SMALL_PATIENTS)],
            date_from=variants[n // len(SMALL_PATIENTS)][0],
            modalities=variants[n // len(SMALL_PATIENTS)][1],
        )
        for n in range(count)
    ]


def load_drill(
    env: DrillEnv,
    jobs: int = 10,
    *,
    workers: int = 6,
    max_associations: int = 2,
    pollers: int = 8,
) -> LoadFigures:
    """`jobs` concurrent fetches through one `serve` with `workers` threads; the gateway must
    keep to `max_associations` towards the PACS, with no association failure, while clients
    poll every job's status."""
    figures = LoadFigures(jobs=jobs, max_associations=max_associations)
    started = time.perf_counter()
    with ConnectionCounter((HOST, env.orthanc.dicom_port)) as counter:
        settings = env.settings("load", workers=workers, lease_seconds=10.0)
        settings.pacs[0].port = counter.port
        settings.pacs[0].max_associations = max_associations
        key = api_key(settings, "service")
        with serving(settings, env.work / "load", "serve") as process:
            base = f"http://127.0.0.1:{process.http_port}"
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                ids = []
                for request in load_requests(jobs):
                    answer = client.post("/api/v1/fetches", json=request.model_dump(mode="json"))
                    check(answer.status_code == 202, f"submit: {answer.status_code} {answer.text}")
                    ids.append(answer.json()["id"])
            latencies = _poll_until_finished(base, headers, ids, pollers)
            with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                final = [client.get(f"/api/v1/jobs/{i}").json() for i in ids]
                events = [client.get(f"/api/v1/jobs/{i}/events").json() for i in ids]
            check(process.stop(), "serve did not stop gracefully")
    figures.succeeded = sum(1 for j in final if j["state"] == "succeeded")
    figures.association_failures = sum(
        1
        for history in events
        for event in history
        if event["state"] in ("waiting_retry", "failed")
        or re.search(r"reached|rejected|aborted", event.get("message") or "")
    )
    figures.peak_associations = counter.peak
    figures.associations_opened = counter.total
    figures.polls = len(latencies)
    figures.poll_p50_ms = round(_percentile(latencies, 50), 1)
    figures.poll_p99_ms = round(_percentile(latencies, 99), 1)
    figures.seconds = round(time.perf_counter() - started, 1)
    _print("load drill", figures, env.say)
    unsuccessful = [f"{j['state']}: {j['message']}" for j in final if j["state"] != "succeeded"]
    check(not unsuccessful, f"{len(unsuccessful)} jobs did not succeed: {unsuccessful}")
    check(figures.association_failures == 0, "association failures")
    check(counter.peak <= max_associations, f"{counter.peak} concurrent associations")
    return figures


def _poll_until_finished(
    base: str, headers: dict[str, str], ids: list[str], pollers: int
) -> list[float]:
    """Poll like clients do (If-None-Match), each poller round-robin over the jobs."""
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + 240
    finished: set[str] = set()

    def poll(offset: int) -> None:
        etags: dict[str, str] = {}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            n = offset
            while time.monotonic() < deadline and len(finished) < len(ids):
                job_id = ids[n % len(ids)]
                n += 1
                sent = time.perf_counter()
                extra = {"If-None-Match": etags[job_id]} if job_id in etags else {}
                answer = client.get(f"/api/v1/jobs/{job_id}", headers=extra)
                took = (time.perf_counter() - sent) * 1000
                with lock:
                    latencies.append(took)
                if answer.status_code == 200:
                    etags[job_id] = answer.headers.get("ETag", "")
                    if answer.json()["state"] in FINISHED:
                        with lock:
                            finished.add(job_id)

    threads = [threading.Thread(target=poll, args=(i,)) for i in range(pollers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    check(len(finished) == len(ids), f"only {len(finished)} of {len(ids)} jobs finished")
    return latencies


def _percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


# -- fuzzing ----------------------------------------------------------------------------------

FUZZ_AET = "FUZZER"


@dataclass
class FuzzFigures:
    schemathesis_runs: int = 0
    server_errors: int = 0
    schemathesis_cases: str = ""
    dicom_cases: int = 0
    dicom_statuses: dict[str, str] = field(default_factory=dict)
    crashes: int = 0
    good_instance_accepted: bool = False
    incoming_left: int = 0


def fuzz_drill(env: DrillEnv, examples: int = 10, *, max_time: float | None = None) -> FuzzFigures:
    """schemathesis against a running `serve` (with a key and without), then malformed DICOM
    and association abuse against its Storage SCP; it must stay up and still accept a good
    instance."""
    figures = FuzzFigures()
    # No workers: fuzzed fetches only need to be accepted or refused, not run.
    settings = env.settings("fuzz", workers=0, allowed_calling_aets=[FUZZ_AET])
    key = api_key(settings)
    workdir = env.work / "fuzz"
    with serving(settings, workdir, "serve") as process:
        url = f"http://127.0.0.1:{process.http_port}"
        for label, auth in (("with key", [f"Authorization: Bearer {key}"]), ("no key", [])):
            errors, summary = _schemathesis(url, auth, examples, max_time, workdir, label)
            figures.schemathesis_runs += 1
            figures.server_errors += errors
            figures.schemathesis_cases += f"{label}: {summary}; "
        scp = settings.dicom_port
        figures.dicom_statuses = dicom_abuse(
            env.catalog, scp, settings.ae_title, settings.studies_dir / ".incoming"
        )
        figures.dicom_cases = len(figures.dicom_statuses)
        figures.crashes = 0 if process.process and process.process.poll() is None else 1
        gateway = Gateway(settings)
        good = env.catalog.study("muller-io-2021").series[0].instances[0]
        status = _store_file(good.path, scp, settings.ae_title)
        figures.good_instance_accepted = status == 0 and any(
            gateway.node.store.root.rglob(f"{good.sop_instance_uid}.dcm")
        )
        health = httpx.get(f"{url}/health", timeout=5)
        check(health.status_code == 200, "serve stopped answering after the fuzzing")
        check(process.stop(), f"serve did not stop gracefully:\n{process.log_tail()}")
        figures.incoming_left = sum(1 for _ in gateway.node.store.incoming.iterdir())
        gateway.engine.dispose()
    _print("fuzzing", figures, env.say)
    check(figures.server_errors == 0, "schemathesis found server errors (see above)")
    check(figures.crashes == 0, "serve crashed under DICOM abuse")
    check(figures.good_instance_accepted, "a good instance was refused after the abuse")
    check(figures.incoming_left == 0, "temp files left in .incoming")
    return figures


def _schemathesis(
    url: str, auth: list[str], examples: int, max_time: float | None, workdir: Path, label: str
) -> tuple[int, str]:
    """Run schemathesis's CLI (its stable interface) with the not_a_server_error check."""
    # Next to this interpreter first: `.venv/bin` need not be on PATH (CI runs .venv/bin/python).
    beside = Path(sys.executable).parent / "schemathesis"
    exe = str(beside) if beside.exists() else shutil.which("schemathesis") or shutil.which("st")
    check(exe is not None, "schemathesis is not installed (pip install schemathesis)")
    command = [
        str(exe),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(examples),
        # One worker: with two, hypothesis's lambda-source parsing raced in CPython 3.11's
        # ast module ("AST constructor recursion depth mismatch") and schemathesis crashed.
        "--workers",
        "1",
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        "1",
        "--suppress-health-check",
        "all",
        "--no-color",
    ]
    if max_time:
        command += ["--max-time", str(max_time)]
    for header in auth:
        command += ["--header", header]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "", "NO_COLOR": "1"}
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=workdir, env=env, timeout=600
    )
    output = result.stdout + result.stderr
    (workdir / f"schemathesis-{label.replace(' ', '-')}.log").write_text(output)
    errors = len(re.findall(r"Server error", output))
    summary = " ".join(
        line.strip() for line in output.splitlines() if re.search(r"\d+ (passed|failed)", line)
    )[-200:]
    if result.returncode != 0 and errors == 0:
        # Not a 5xx but schemathesis failed anyway (a crash, a bad option): show it.
        raise DrillFailure(f"schemathesis exited {result.returncode}:\n{output[-3000:]}")
    return errors, summary or output.strip().splitlines()[-1]


def _file_bytes(meta: FileMetaDataset, body: bytes, preamble: bytes = b"\0" * 128) -> bytes:
    buffer = io.BytesIO()
    buffer.write(preamble + b"DICM")
    write_file_meta_info(buffer, meta, enforce_standard=True)
    return buffer.getvalue() + body


def _meta(sop_class: str, sop_instance: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return meta


def _explicit_body(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=False, little_endian=True)
    return buffer.getvalue()


def dicom_abuse(catalog: DemoCatalog, port: int, aet: str, incoming: Path) -> dict[str, str]:
    """Throw malformed datasets and broken associations at the SCP; return what each got.

    Datasets go out raw (pynetdicom's chunked send streams the file after its meta header
    as it is), so the SCP sees exactly the broken bytes."""
    good = catalog.study("muller-io-2021").series[0].instances[1]
    raw = good.path.read_bytes()
    body = dataset_body(raw)
    import pydicom

    ds = pydicom.dcmread(good.path)
    sop_class = str(ds.SOPClassUID)
    sop = str(ds.SOPInstanceUID)
    pixel_at = body.find(b"\xe0\x7f\x10\x00")
    wrong_length = bytearray(body)
    wrong_length[pixel_at + 8 : pixel_at + 12] = (0x7FFFFFF0).to_bytes(4, "little")
    rng = random.Random(7)
    escape = Dataset()
    escape.update(ds)
    escape.StudyInstanceUID = "../../../../escape"
    escape.SeriesInstanceUID = "..%2F..%2Fescape"
    cases: dict[str, bytes] = {
        "truncated": _file_bytes(_meta(sop_class, sop), body[: len(body) * 3 // 5]),
        "wrong pixel length": _file_bytes(_meta(sop_class, sop), bytes(wrong_length)),
        "garbage body": _file_bytes(_meta(sop_class, sop), rng.randbytes(4096)),
        "empty body": _file_bytes(_meta(sop_class, sop), b""),
        "garbage preamble": _file_bytes(
            _meta(sop_class, "1.2.3.999"), rng.randbytes(300), preamble=rng.randbytes(128)
        ),
        "sop mismatch": _file_bytes(_meta(sop_class, "1.2.3.4.5"), body),
        "traversal uids": _file_bytes(_meta(sop_class, sop), _explicit_body(escape)),
    }
    results: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in cases.items():
            path = Path(tmp) / f"{name.replace(' ', '-')}.dcm"
            path.write_bytes(data)
            status = _store_file(path, port, aet)
            results[name] = "no response" if status is None else f"0x{status:04X}"
    results["connect and close"] = _connect_and_close(port)
    # Those connections never associated; the SCP must free their slots soon (it once held
    # them for its 30 s ACSE timeout, refusing every PACS meanwhile).
    began = time.perf_counter()
    wait_for(
        lambda: _associate_as(port, aet, FUZZ_AET) == "accepted",
        20,
        "the SCP to accept associations again after connect-and-close",
    )
    results["accepting again after"] = f"{time.perf_counter() - began:.1f} s"
    results["garbage instead of A-ASSOCIATE"] = _send_garbage(port, rng)
    results["unknown calling AE"] = _associate_as(port, aet, "INTRUDER")
    results["abort mid-dataset"] = _abort_mid_dataset(catalog, port, aet, incoming)
    for name in ("truncated", "wrong pixel length", "garbage body", "sop mismatch"):
        check(results[name] not in ("0x0000",), f"{name}: stored anyway ({results[name]})")
    check(results["unknown calling AE"] == "rejected", "an unknown AE title was accepted")
    return results


def _store_file(path: Path, port: int, aet: str, calling: str = FUZZ_AET) -> int | None:
    """C-STORE the file's bytes as they are; the status, or None if none came."""
    meta = pydicom_meta(path)
    ae = AE(ae_title=calling)
    # One context per syntax (an SCP accepts one syntax per context): an RLE file can only
    # go as RLE, the fuzzer's broken files as Explicit VR Little Endian.
    for syntax in dict.fromkeys([str(meta.TransferSyntaxUID), ExplicitVRLittleEndian]):
        ae.add_requested_context(str(meta.MediaStorageSOPClassUID), syntax)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    assoc = ae.associate(HOST, port, ae_title=aet)
    if not assoc.is_established:
        return None
    previous = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        status = assoc.send_c_store(path)
        return int(status.Status) if status and "Status" in status else None
    except Exception:
        return None
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = previous
        if assoc.is_established:
            assoc.release()


def pydicom_meta(path: Path) -> Any:
    from pydicom.filereader import read_file_meta_info

    return read_file_meta_info(path)


def _connect_and_close(port: int) -> str:
    for _ in range(20):
        with socket.create_connection((HOST, port), timeout=5):
            pass
    return "closed x20"


def _send_garbage(port: int, rng: random.Random) -> str:
    with socket.create_connection((HOST, port), timeout=5) as sock:
        sock.sendall(b"\x01\x00" + rng.randbytes(2000))
        sock.settimeout(5)
        with contextlib.suppress(OSError):
            sock.recv(1024)
    return "sent 2 KB"


def _associate_as(port: int, aet: str, calling: str) -> str:
    ae = AE(ae_title=calling)
    ae.add_requested_context("1.2.840.10008.1.1")
    ae.acse_timeout = ae.network_timeout = 5
    assoc = ae.associate(HOST, port, ae_title=aet)
    if assoc.is_established:
        assoc.release()
        return "accepted"
    return "rejected" if assoc.is_rejected else "no association"


def _abort_mid_dataset(catalog: DemoCatalog, port: int, aet: str, incoming: Path) -> str:
    """Start sending a large (40 MB) instance, and A-ABORT once the SCP is receiving it."""
    source = catalog.study("dubois-ext-cbct-2023").series[0].instances[0].path
    import pydicom

    ds = pydicom.dcmread(source)
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.99999"
    ds.PixelData = os.urandom(40 * 1024 * 1024)
    ds.Rows, ds.Columns = 4096, 5120
    ae = AE(ae_title=FUZZ_AET)
    ae.add_requested_context(str(ds.SOPClassUID), ExplicitVRLittleEndian)
    ae.maximum_pdu_size = 16384  # many small PDUs: plenty of moments to abort in between
    # After our abort, send_c_store waits for a response that never comes: not for 30 s.
    ae.dimse_timeout = ae.network_timeout = ae.acse_timeout = 2
    assoc = ae.associate(HOST, port, ae_title=aet)
    check(assoc.is_established, "the fuzzer's own association failed")
    outcome: list[str] = []

    def send() -> None:
        try:
            status = assoc.send_c_store(ds)
            outcome.append("completed" if status else "aborted")
        except Exception as exc:
            outcome.append(f"aborted ({type(exc).__name__})")

    def receiving() -> bool:
        # The SCP streams the dataset to a temp file: once it holds a few MB, we are mid-dataset.
        sizes = [p.stat().st_size for p in incoming.iterdir() if p.is_file()]
        return any(size > 4 * 1024 * 1024 for size in sizes) or not sender.is_alive()

    sender = threading.Thread(target=send)
    sender.start()
    wait_for(receiving, 30, "the SCP to be receiving the large instance")
    assoc.abort()
    sender.join(30)
    return outcome[0] if outcome else "aborted"


# -- hostile DICOM drill ------------------------------------------------------------------------


@dataclass
class HostileFigures:
    cases: int = 0
    pushed: dict[str, str] = field(default_factory=dict)
    fetch_state: str = ""
    requests: int = 0
    concurrency: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    drawn: int = 0
    placeholders: int = 0
    reasons: dict[str, str] = field(default_factory=dict)
    slowest_request_s: float = 0.0
    rss_start_mb: float = 0.0
    rss_peak_mb: float = 0.0
    rss_limit_mb: float = 0.0
    patient_values_in_log: int = 0
    serve_alive: bool = False
    seconds: float = 0.0


def hostile_drill(
    env: DrillEnv, *, concurrency: int = 8, rounds: int = 3, rss_limit_mb: float = 500
) -> HostileFigures:
    """Size bombs and inconsistent headers pushed to the SCP and fetched from the PACS, then
    their previews, thumbnails and DICOMweb renders asked for `concurrency` at a time for
    `rounds` rounds: every answer a PNG, the one legitimate large image drawn, every hostile
    one a placeholder with a patient-free reason, and the peak RSS of `serve` (its VmHWM)
    under `rss_limit_mb`."""
    import hostile_dicom

    started = time.perf_counter()
    figures = HostileFigures(concurrency=concurrency, rss_limit_mb=rss_limit_mb)
    fetched = hostile_dicom.hostile_files(env.work / "hostile-files")
    pushed = hostile_dicom.hostile_files(
        env.work / "hostile-pushed", study_uid=f"{hostile_dicom.STUDY_UID}.2"
    )
    figures.cases = len(fetched)
    by_series = {f"{hostile_dicom.STUDY_UID}.{n}": name for n, name in enumerate(fetched, start=1)}
    env.orthanc.upload(fetched.values())
    settings = env.settings("hostile", workers=1, allowed_calling_aets=[FUZZ_AET])
    key = api_key(settings, "clinician")
    try:
        with serving(settings, env.work / "hostile", "serve") as process:
            pid = process.process.pid if process.process else 0
            figures.rss_start_mb = _proc_status_mb(pid, "VmRSS")
            for name, path in pushed.items():
                status = _store_file(path, settings.dicom_port, settings.ae_title)
                figures.pushed[name] = "no response" if status is None else f"0x{status:04X}"
            url = f"http://127.0.0.1:{process.http_port}"
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
                figures.fetch_state = _fetch_and_wait(client, hostile_dicom.PATIENT_ID)
                paths = _hostile_urls(hostile_dicom.STUDY_UID, by_series) * rounds
                random.Random(5).shuffle(paths)
                answers = _get_concurrently(client, [p for p, _ in paths], concurrency)
            figures.requests = len(answers)
            figures.statuses = dict(Counter(status for status, _, _ in answers))
            figures.slowest_request_s = round(max(seconds for _, _, seconds in answers), 2)
            for (path, case), (status, reason, _) in zip(paths, answers, strict=True):
                if status != 200:
                    continue
                if reason is None:
                    figures.drawn += 1
                    check(case == hostile_dicom.GOOD_LARGE, f"{case}: drawn at {path}")
                else:
                    figures.placeholders += 1
                    figures.reasons.setdefault(case, reason)
            figures.rss_peak_mb = _proc_status_mb(pid, "VmHWM")
            figures.serve_alive = process.process is not None and process.process.poll() is None
            health = httpx.get(f"{url}/health", timeout=5)
            check(health.status_code == 200, "serve stopped answering after the hostile files")
            check(process.stop(), f"serve did not stop gracefully:\n{process.log_tail()}")
        log_text = process.log_path.read_text(errors="replace")
        figures.patient_values_in_log = sum(
            _contains(log_text, value)
            for value in (hostile_dicom.PATIENT_ID, hostile_dicom.PATIENT_NAME, "Hostile")
        )
    finally:
        for study in (hostile_dicom.STUDY_UID,):
            with contextlib.suppress(Exception):
                env.orthanc.delete_study(study)
    figures.seconds = round(time.perf_counter() - started, 1)
    _print("hostile DICOM drill", figures, env.say)
    check(figures.fetch_state == "succeeded", f"the fetch ended {figures.fetch_state}")
    unstored = {name: status for name, status in figures.pushed.items() if status != "0x0000"}
    check(not unstored, f"pushes the SCP did not store: {unstored}")
    check(figures.statuses == {200: figures.requests}, f"not all 200: {figures.statuses}")
    check(figures.drawn > 0, "the large but allowed image was never drawn")
    hostile_cases = set(fetched) - {hostile_dicom.GOOD_LARGE}
    missing = sorted(hostile_cases - set(figures.reasons))
    check(not missing, f"no placeholder reason for: {missing}")
    check(figures.serve_alive, "serve died")
    check(figures.patient_values_in_log == 0, "patient data in the log")
    check(
        figures.rss_peak_mb <= rss_limit_mb,
        f"serve peaked at {figures.rss_peak_mb:.0f} MB, over {rss_limit_mb:.0f} MB",
    )
    return figures


def _fetch_and_wait(client: httpx.Client, patient_id: str) -> str:
    answer = client.post("/api/v1/fetches", json={"pacs_patient_id": patient_id})
    check(answer.status_code == 202, f"submit: {answer.status_code} {answer.text[:200]}")
    job = answer.json()["id"]
    state: list[str] = []

    def finished() -> bool:
        state[:] = [client.get(f"/api/v1/jobs/{job}").json()["state"]]
        return state[0] in FINISHED

    wait_for(finished, 180, "the fetch of the hostile study")
    return state[0]


def _hostile_urls(study: str, by_series: dict[str, str]) -> list[tuple[str, str]]:
    """(path, case) for every preview, thumbnail and DICOMweb rendering of every case."""
    urls = []
    for series, case in by_series.items():
        base = f"/api/v1/studies/{study}/series/{series}"
        urls += [(f"{base}/preview.png", case), (f"{base}/thumbnail.png", case)]
        instance = f"/dicomweb/studies/{study}/series/{series}/instances/{series}.1/rendered"
        urls.append((instance, case))
    return urls


def _get_concurrently(
    client: httpx.Client, paths: Sequence[str], concurrency: int
) -> list[tuple[int, str | None, float]]:
    """(status, X-Preview-Unavailable or None, seconds) per path, in order."""
    from concurrent.futures import ThreadPoolExecutor

    def get(path: str) -> tuple[int, str | None, float]:
        began = time.perf_counter()
        answer = client.get(path)
        elapsed = time.perf_counter() - began
        if answer.status_code == 200:
            check(answer.content.startswith(b"\x89PNG"), f"{path}: not a PNG")
        return answer.status_code, answer.headers.get("x-preview-unavailable"), elapsed

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(get, paths))


def _proc_status_mb(pid: int, field_name: str) -> float:
    """VmRSS (now) or VmHWM (peak since start) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise DrillFailure(f"no {field_name} for process {pid}")


# -- security drill ---------------------------------------------------------------------------


@dataclass
class SecurityFigures:
    routes: int = 0
    refused_without_key: int = 0
    refused_bad_key: int = 0
    keys_in_log: int = 0
    patient_values_checked: int = 0
    patient_values_leaked: list[str] = field(default_factory=list)
    rollbar_items: int = 0
    unknown_ae: str = ""
    traversal_statuses: dict[str, int] = field(default_factory=dict)
    files_outside_store: int = 0


def security_drill(
    env: DrillEnv,
    rollbar_endpoint: str | None = None,
    rollbar_text: Callable[[], str] | None = None,
) -> SecurityFigures:
    """Keys on every route, no key or patient datum in the log or Rollbar after a run with
    failures, unknown AE titles refused, no path out of the store through UIDs."""
    figures = SecurityFigures()
    # Every route is tried with a wrong key: more than one address may send in a minute
    # (that limit is tested on its own, tests/gateway/test_gateway_key_guessing.py).
    overrides: dict[str, Any] = {
        "workers": 2,
        "retry_max_attempts": 1,
        "failed_key_attempts_per_minute": 10_000,
    }
    if rollbar_endpoint:
        overrides |= {"rollbar_access_token": "drill-token", "rollbar_endpoint": rollbar_endpoint}
    settings = env.settings("security", **overrides)
    # A second PACS that is down: its jobs fail, so the run includes failures and error logs.
    dead = settings.pacs[0].model_copy(update={"name": "dead-pacs", "port": free_port()})
    settings.pacs.append(dead)
    key = api_key(settings, "clinician")
    workdir = env.work / "security"
    with serving(settings, workdir, "serve") as process:
        url = f"http://127.0.0.1:{process.http_port}"
        with httpx.Client(base_url=url, timeout=30) as client:
            _check_routes(client, key, figures)
            headers = {"Authorization": f"Bearer {key}"}
            ids = []
            for patient in env.catalog.patients:
                pid = patient.patient_id
                for pacs in ("test-orthanc", "dead-pacs"):
                    answer = client.post(
                        "/api/v1/fetches",
                        json={"pacs_patient_id": pid, "pacs": pacs, "modalities": ["PX", "IO"]},
                        headers=headers,
                    )
                    check(answer.status_code == 202, f"submit: {answer.status_code}")
                    ids.append(answer.json()["id"])
                # Patient values where they may be echoed: paths, queries, bad bodies.
                client.get(f"/api/v1/patients/{pid}/studies", headers=headers)
                client.get("/api/v1/jobs", params={"pacs_patient_id": pid}, headers=headers)
                client.post(
                    "/api/v1/fetches",
                    json={"pacs_patient_id": pid, "date_from": patient.birth_date},
                    headers=headers,
                )
                client.post(
                    "/api/v1/fetches",
                    json={"pacs_patient_id": patient.name},
                    headers=headers | {"Idempotency-Key": patient.patient_id},
                )
                client.get(f"/api/v1/studies/{patient.name}", headers=headers)
            wait_for(
                lambda: all(
                    client.get(f"/api/v1/jobs/{i}", headers=headers).json()["state"] in FINISHED
                    for i in ids
                ),
                120,
                "the security run's jobs",
            )
            for probe in ("..%2F..", "..%2F..%2F..%2Fetc%2Fpasswd", "%2E%2E", "1.2.3%2F..%2F.."):
                answer = client.get(f"/api/v1/studies/{probe}", headers=headers)
                figures.traversal_statuses[probe] = answer.status_code
            answer = client.get("/api/v1/patients/..%2F..%2Fetc/studies", headers=headers)
            figures.traversal_statuses["patients/..%2F..%2Fetc"] = answer.status_code
        figures.unknown_ae = _associate_as(settings.dicom_port, settings.ae_title, "INTRUDER")
        check(process.stop(), f"serve did not stop gracefully:\n{process.log_tail()}")
    log_text = process.log_path.read_text(errors="replace")
    rollbar = rollbar_text() if rollbar_text else ""
    figures.rollbar_items = rollbar.count("\n") + 1 if rollbar else 0
    secret_parts = [key, key.rsplit("_", 1)[-1]]
    figures.keys_in_log = sum(log_text.count(part) + rollbar.count(part) for part in secret_parts)
    values = patient_values(env.catalog)
    figures.patient_values_checked = len(values)
    haystack = log_text + "\n" + rollbar
    figures.patient_values_leaked = [v for v in values if _contains(haystack, v)]
    store_root = settings.studies_dir.resolve()
    figures.files_outside_store = sum(
        1 for p in settings.data_dir.rglob("*.dcm") if not p.resolve().is_relative_to(store_root)
    ) + sum(1 for _ in env.work.rglob("*escape*"))
    _print("security drill", figures, env.say)
    check(figures.refused_without_key == figures.routes, "a route answered without a key")
    check(figures.refused_bad_key == figures.routes, "a route answered a bad key")
    check(figures.keys_in_log == 0, "an API key appears in the log or Rollbar")
    check(not figures.patient_values_leaked, f"leaked: {figures.patient_values_leaked}")
    check(figures.unknown_ae == "rejected", "the SCP accepted an unknown AE title")
    check(all(s in (404, 422) for s in figures.traversal_statuses.values()), "traversal")
    check(figures.files_outside_store == 0, "a file landed outside the store")
    return figures


def _check_routes(client: httpx.Client, key: str, figures: SecurityFigures) -> None:
    """Every operation in the app's own OpenAPI but /health: 401 without or with a bad key."""
    schema = client.get("/openapi.json").json()
    bad_keys = [f"pgw_{'0' * 16}_{'x' * 43}", key[:-2] + "zz", "not-a-key", key.upper()]
    for path, item in schema["paths"].items():
        for method in item:
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            concrete = re.sub(r"\{[^}]+\}", "1.2.3", path)
            if path == "/health":
                check(client.request(method, concrete).status_code == 200, "/health")
                continue
            figures.routes += 1
            body = {"json": {"pacs_patient_id": "X"}} if method == "post" else {}
            if client.request(method, concrete, **body).status_code == 401:
                figures.refused_without_key += 1
            statuses = [
                client.request(
                    method, concrete, headers={"Authorization": f"Bearer {bad}"}, **body
                ).status_code
                for bad in bad_keys
            ]
            if all(s == 401 for s in statuses):
                figures.refused_bad_key += 1


def patient_values(catalog: DemoCatalog) -> list[str]:
    """Every demo patient's name (whole and by part), id and birth date (two spellings)."""
    values: set[str] = set()
    for patient in catalog.patients:
        values |= {patient.patient_id, patient.birth_date, patient.name}
        date = patient.birth_date
        values.add(f"{date[:4]}-{date[4:6]}-{date[6:]}")
        for part in re.split(r"[\^ ]", patient.name):
            if len(part) >= 4:  # "Zoë" and "van" would match ordinary words
                values.add(part)
        values.add(patient.name.replace("^", " "))
    return sorted(values)


def _contains(text: str, value: str) -> bool:
    # Digits inside longer digit runs (UIDs, timings) are not a birth date or an id.
    return re.search(rf"(?<![0-9A-Za-z]){re.escape(value)}(?![0-9A-Za-z])", text) is not None


# -- output and the full forms ------------------------------------------------------------------


def _print(title: str, figures: Any, say: Say) -> None:
    say(f"{title}:")
    for name, value in asdict(figures).items():
        say(f"  {name:<24} {value}")


@contextlib.contextmanager
def own_orthanc(work: Path, say: Say) -> Iterator[DrillEnv]:
    """An Orthanc of our own, loaded with the demo studies and knowing the gateway."""
    started = time.perf_counter()
    catalog = demo_studies.generate(work / "demo")
    scp_port = free_port()
    server = OrthancServer(
        work / "orthanc", modalities={GATEWAY_MODALITY: (GATEWAY_AET, HOST, scp_port)}
    )
    server.start()
    try:
        demo_studies.store(catalog.files, HOST, server.dicom_port, server.ae_title)
        say(
            f"Orthanc loaded with {catalog.instance_count} instances in "
            f"{time.perf_counter() - started:.1f} s"
        )
        yield DrillEnv(server, catalog, work, scp_port, say)
    finally:
        server.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "drill", choices=["all", "crash", "outage", "load", "fuzz", "security", "hostile"]
    )
    parser.add_argument("--rounds", type=int, default=20, help="crash drill kills")
    parser.add_argument("--seed", type=int, default=20240520)
    parser.add_argument("--jobs", type=int, default=50, help="load drill jobs")
    parser.add_argument("--examples", type=int, default=100, help="schemathesis max examples")
    parser.add_argument("--concurrency", type=int, default=8, help="hostile drill requests")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="drills-"))
    every = ["crash", "outage", "load", "fuzz", "security", "hostile"]
    chosen = every if args.drill == "all" else [args.drill]
    failures = 0
    try:
        with own_orthanc(work, print) as env:
            extra: list[OrthancServer] = []

            def make_orthanc(**kwargs: Any) -> OrthancServer:
                server = OrthancServer(work / f"orthanc-extra-{len(extra)}", **kwargs)
                extra.append(server)
                server.start()
                return server

            runs: dict[str, Callable[[], object]] = {
                "crash": lambda: crash_drill(env, args.rounds, seed=args.seed),
                "outage": lambda: outage_drill(env, make_orthanc),
                "load": lambda: load_drill(env, args.jobs),
                "fuzz": lambda: fuzz_drill(env, args.examples),
                "security": lambda: _security_with_recorder(env),
                "hostile": lambda: hostile_drill(env, concurrency=args.concurrency),
            }
            try:
                for name in chosen:
                    try:
                        runs[name]()
                    except DrillFailure as exc:
                        failures += 1
                        print(f"{name}: FAILED: {exc}")
            finally:
                for server in extra:
                    server.kill()
    finally:
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failures else 0)


def _security_with_recorder(env: DrillEnv) -> SecurityFigures:
    sys.path.insert(0, str(ROOT / "tests" / "r4"))
    from r4_testkit import RollbarRecorder

    recorder = RollbarRecorder()
    recorder.start()
    try:
        return security_drill(env, recorder.endpoint, recorder.everything)
    finally:
        recorder.stop()


if __name__ == "__main__":
    main()
