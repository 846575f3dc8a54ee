"""`pacs-gateway check`: everything an installer needs to know in one run, one line per check.

R4 (reachable, mapping against the real columns, patient count, every read once), each PACS
(C-ECHO, a C-FIND, and with a study UID a C-MOVE of that study back to this gateway) and the
Flynotes licence. Read-only towards R4 and the PACS (a moved study lands in the gateway's own
store); no line carries patient data. Unconfigured parts are reported as skipped, not failed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import httpx

from gateway.core.settings import Settings
from pacs.echo import echo
from pacs.errors import PacsError
from pacs.models import Peer, StudyQuery
from pacs.query import find_studies
from pacs.tls import TlsConfigurationError
from r4.check import CheckResult, check_r4
from r4.database import create_r4_engine
from r4.flynotes import FlynotesClient, FlynotesError, FlynotesRequestError
from r4.selfupdate import DIST_NAME, installed_version

# A PatientID no practice uses: the C-FIND proves the PACS answers queries, matching nothing.
PROBE_PATIENT_ID = "PACSGATEWAY-CHECK-0"


def r4_checks(settings: Settings) -> list[CheckResult]:
    url = settings.r4_url()
    if url is None:
        return [CheckResult("r4", True, "not configured: skipped (set [r4] to check it).")]
    try:
        engine = create_r4_engine(url, settings.r4_mapping())
    except ImportError as exc:
        return [
            CheckResult(
                "r4",
                False,
                f"the database driver is not installed ({exc.name}); install the mssql extra.",
            )
        ]
    try:
        return check_r4(engine)
    finally:
        engine.dispose()


def pacs_checks(settings: Settings, study_uid: str | None = None) -> list[CheckResult]:
    if not settings.pacs:
        return [CheckResult("pacs", False, "no PACS is configured: add a [[pacs]] entry.")]
    results: list[CheckResult] = []
    moved = False
    for entry in settings.pacs:
        peer = entry.peer()
        name = f"pacs {entry.name}"
        try:
            seconds = echo(peer, settings.ae_title)
        except PacsError as exc:
            results.append(CheckResult(f"{name} C-ECHO", False, str(exc)))
            continue
        results.append(
            CheckResult(
                f"{name} C-ECHO", True, f"answered in {seconds * 1000:.0f} ms {transport(peer)}"
            )
        )
        query = StudyQuery(study_uid=study_uid) if study_uid else StudyQuery(PROBE_PATIENT_ID)
        try:
            studies = find_studies(peer, settings.ae_title, query)
        except PacsError as exc:
            results.append(CheckResult(f"{name} C-FIND", False, str(exc)))
            continue
        what = "the named study" if study_uid else "a test patient id"
        results.append(
            CheckResult(f"{name} C-FIND", True, f"answered: {len(studies)} studies for {what}")
        )
        if study_uid and studies and not moved:
            results.append(_move_check(settings, entry.name, study_uid))
            moved = True
    if study_uid and not moved:
        results.append(CheckResult("pacs C-MOVE", False, "no configured PACS has the named study."))
    return results


def transport(peer: Peer) -> str:
    """How the associations with a PACS travel, in words for an installer."""
    if peer.tls is None:
        return "over plain TCP (not encrypted)"
    client = ", with the gateway's client certificate" if peer.tls.cert_file else ""
    return f"over TLS{client}"


def scp_check(settings: Settings) -> CheckResult:
    """Whether the Storage SCP's TLS files can be used, before any PACS sends to it."""
    tls = settings.scp_tls()
    name = "storage scp"
    if tls is None:
        return CheckResult(
            name, True, f"port {settings.dicom_port} speaks plain DICOM (not encrypted)"
        )
    try:
        tls.context()
    except TlsConfigurationError as exc:
        return CheckResult(name, False, str(exc))
    who = (
        "senders need a client certificate signed by dicom_tls_ca_file"
        if tls.ca_file
        else "any sender that speaks TLS"
    )
    return CheckResult(name, True, f"port {settings.dicom_port} speaks DICOM over TLS only; {who}")


def _move_check(settings: Settings, pacs_name: str, study_uid: str) -> CheckResult:
    from gateway.core.dicom_node import DicomNode  # starts the Storage SCP: only when asked

    name = f"pacs {pacs_name} C-MOVE"
    try:
        with DicomNode(settings) as node:
            result = node.retriever.fetch_study(settings.peer(pacs_name), study_uid)
    except (PacsError, OSError) as exc:
        return CheckResult(name, False, str(exc))
    return CheckResult(
        name, True, f"{result.expected} images arrived at {settings.ae_title} (this gateway)"
    )


def licence_checks(settings: Settings) -> list[CheckResult]:
    if settings.flynotes_url is None or settings.flynotes_licence_key is None:
        return [CheckResult("flynotes licence", True, "not configured: skipped.")]
    version = installed_version(DIST_NAME) or "0"
    try:
        with FlynotesClient(
            settings.flynotes_url,
            settings.flynotes_licence_key.get_secret_value(),
            max_attempts=2,
        ) as client:
            info = client.initialise(version)
    except FlynotesRequestError as exc:
        if exc.status in (401, 403):
            return [
                CheckResult(
                    "flynotes licence",
                    False,
                    "Flynotes does not recognise the licence key; check flynotes_licence_key.",
                )
            ]
        return [CheckResult("flynotes licence", False, f"{exc}.")]
    except FlynotesError as exc:
        return [CheckResult("flynotes licence", False, f"{exc}; retrying later may help.")]
    except httpx.HTTPError as exc:
        return [
            CheckResult(
                "flynotes licence",
                False,
                f"Flynotes at {settings.flynotes_url} could not be reached "
                f"({type(exc).__name__}); check the address and this machine's internet access.",
            )
        ]
    wanted = info.gateway_version
    note = "" if wanted == version else f" (Flynotes wants {wanted}: it will self-update)"
    return [CheckResult("flynotes licence", True, f"accepted; this is version {version}{note}")]


def run_install_checks(settings: Settings, *, study_uid: str | None = None) -> list[CheckResult]:
    results = r4_checks(settings)
    results += [scp_check(settings)]
    results += pacs_checks(settings, study_uid)
    results += licence_checks(settings)
    return results


def render(results: Sequence[CheckResult], *, as_json: bool = False) -> str:
    if as_json:
        return json.dumps(
            {"ok": all(r.ok for r in results), "checks": [r.as_dict() for r in results]},
            indent=2,
        )
    failed = sum(not r.ok for r in results)
    summary = f"{len(results)} checks, {failed} failed" if failed else f"all {len(results)} ok"
    return "\n".join([*(r.line() for r in results), summary])
