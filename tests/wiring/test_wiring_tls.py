"""A whole gateway over DICOM TLS: a fetch job from Orthanc with DicomTlsEnabled, C-MOVE back
to the gateway's TLS Storage SCP; `/ready` and `check` say which PACS use TLS."""

from __future__ import annotations

from orthanc_server import HOST, wait_until
from pytest_orthanc import PLAIN_STUDY

import jobs
from gateway.cli.check import run_install_checks
from gateway.core.settings import PacsSettings
from gateway.fetch.request import FetchRequest


def test_a_fetch_over_tls_both_ways_and_the_checks_say_so(
    wired_gateway, tls_orthanc, tls_certificates, orthanc_running, demo_catalog
):
    certs = tls_certificates
    pacs = tls_orthanc()
    study = demo_catalog.study(PLAIN_STUDY)
    pacs.upload(study.files)
    secure = PacsSettings(
        name="tls-pacs",
        ae_title=pacs.ae_title,
        host=HOST,
        port=pacs.dicom_port,
        tls=True,
        tls_ca_file=certs.ca,
        tls_cert_file=certs.gateway.cert,
        tls_key_file=certs.gateway.key,
    )
    plain = PacsSettings(
        name="plain-pacs",
        ae_title=orthanc_running.ae_title,
        host=HOST,
        port=orthanc_running.dicom_port,
    )
    gateway = wired_gateway(
        pacs,
        pacs=[secure, plain],
        dicom_tls_cert_file=certs.gateway.cert,
        dicom_tls_key_file=certs.gateway.key,
        dicom_tls_ca_file=certs.ca,
    )

    job, _ = gateway.submit_fetch(
        FetchRequest(
            pacs="tls-pacs", pacs_patient_id=study.patient_id, study_uids=[study.study_uid]
        )
    )
    finished = {s.value for s in jobs.FINISHED_STATES}
    assert wait_until(lambda: gateway.jobs.get(job.id).state in finished, 120)
    done = gateway.jobs.get(job.id)
    assert done.state == "succeeded", done.message
    indexed = gateway.index.study(study.study_uid)
    assert indexed is not None and indexed.instance_count == study.instance_count

    ready = gateway.readiness().checks
    assert ready["pacs:tls-pacs"].ok and ready["pacs:tls-pacs"].detail == "answers C-ECHO over TLS"
    assert ready["pacs:plain-pacs"].detail == "answers C-ECHO over plain TCP"

    lines = {r.name: r for r in run_install_checks(gateway.settings)}
    assert lines["pacs tls-pacs C-ECHO"].detail.endswith(
        "over TLS, with the gateway's client certificate"
    )
    assert lines["pacs plain-pacs C-ECHO"].detail.endswith("over plain TCP (not encrypted)")
    assert lines["storage scp"].ok
    assert "speaks DICOM over TLS only" in lines["storage scp"].detail
