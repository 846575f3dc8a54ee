"""DICOM over TLS both ways, against real peers: Orthanc 1.10 with DicomTlsEnabled (C-ECHO,
C-FIND, C-GET, and C-MOVE back to the gateway's TLS Storage SCP with UseDicomTls), and
DCMTK's `storescu +tls` into the SCP. Each misconfiguration fails with one sentence."""

from __future__ import annotations

import logging
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from orthanc_server import HOST, wait_until
from pytest_orthanc import GATEWAY_AET, PLAIN_STUDY

from pacs.echo import echo
from pacs.errors import TlsRefused
from pacs.models import Peer, StudyQuery
from pacs.query import find_studies
from pacs.retrieve import Retriever
from pacs.scp import StorageSCP
from pacs.tls import TlsClient, TlsServer
from testkit.certificates import Certificates

STORESCU = "/usr/bin/storescu"


@pytest.fixture
def certs(tls_certificates) -> Certificates:
    return tls_certificates


def _peer(server, method: str = "move", tls: TlsClient | None = None) -> Peer:
    return Peer(
        name="tls-pacs",
        ae_title=server.ae_title,
        host=HOST,
        port=server.dicom_port,
        retrieve_method=method,
        connect_timeout=3.0,
        acse_timeout=5.0,
        dimse_timeout=20.0,
        tls=tls,
    )


def _client(certs: Certificates) -> TlsClient:
    return TlsClient(certs.ca, certs.gateway.cert, certs.gateway.key)


def _tls_scp(local, store, certs: Certificates, senders) -> StorageSCP:
    scp = StorageSCP(
        local, store, senders, TlsServer(certs.gateway.cert, certs.gateway.key, certs.ca)
    )
    scp.start()
    return scp


@pytest.mark.parametrize("method", ["move", "get"])
def test_every_operation_runs_over_tls(method, tls_orthanc, certs, local, store, demo_catalog):
    pacs = tls_orthanc()
    study = demo_catalog.study(PLAIN_STUDY)
    pacs.upload(study.files)
    peer = _peer(pacs, method, _client(certs))
    scp = _tls_scp(local, store, certs, [pacs.ae_title])
    try:
        assert echo(peer, GATEWAY_AET) >= 0
        (found,) = find_studies(peer, GATEWAY_AET, StudyQuery(study_uid=study.study_uid))
        assert found.number_of_instances == study.instance_count
        result = Retriever(local, store, scp).fetch_study(
            peer, study.study_uid, patient=found.patient
        )
    finally:
        scp.stop()
    assert result.received_now == study.instance_count
    assert len(list(store.study_dir(study.study_uid).rglob("*.dcm"))) == study.instance_count


def test_each_tls_mistake_towards_a_pacs_is_one_sentence(tls_orthanc, orthanc_running, certs):
    pacs = tls_orthanc()
    good = _client(certs)
    cases = {
        "a plain association to the TLS port": (
            _peer(pacs),
            "could not be used: that port speaks TLS: set tls = true for this PACS",
        ),
        "a CA that did not sign the PACS's certificate": (
            _peer(pacs, tls=replace(good, ca_file=certs.other_ca)),
            f"its TLS certificate is not signed by the CA in tls_ca_file ({certs.other_ca})",
        ),
        "no client certificate for a PACS that asks for one": (
            _peer(pacs, tls=TlsClient(certs.ca)),
            "it asks for a client certificate: set tls_cert_file and tls_key_file",
        ),
        "TLS to a port that speaks plain DICOM": (
            _peer(orthanc_running, tls=good),
            "it does not speak TLS on that port",
        ),
    }
    for what, (peer, words) in cases.items():
        with pytest.raises(TlsRefused) as refused:
            echo(peer, GATEWAY_AET)
        message = str(refused.value)
        assert words in message, what
        assert message.count(". ") == 0 and message.endswith("."), message  # one sentence
        assert not refused.value.transient, what


def test_an_expired_pacs_certificate_is_named(tls_orthanc, certs):
    pacs = tls_orthanc(certs.expired)
    with pytest.raises(TlsRefused) as refused:
        echo(_peer(pacs, tls=_client(certs)), GATEWAY_AET)
    assert str(refused.value) == (
        f"The PACS tls-pacs at {HOST}:{pacs.dicom_port} could not be used over TLS: its TLS "
        "certificate has expired; the PACS's administrator must renew it."
    )


def _storescu(port: int, files: list[Path], *tls: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [STORESCU, *tls, "-aet", "STORESCU", "-aec", GATEWAY_AET, HOST, str(port)]
        + [str(f) for f in files],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_storescu_sends_over_tls_and_wrong_senders_are_refused_in_words(
    certs, local, store, demo_catalog, caplog
):
    study = demo_catalog.study(PLAIN_STUDY)
    scp = _tls_scp(local, store, certs, ["STORESCU"])
    caplog.set_level(logging.WARNING, logger="pacs.scp")
    try:
        sent = _storescu(
            scp.port,
            study.files,
            "+tls",
            str(certs.modality.key),
            str(certs.modality.cert),
            "+cf",
            str(certs.ca),
        )
        assert sent.returncode == 0, sent.stderr
        assert len(list(store.study_dir(study.study_uid).rglob("*.dcm"))) == study.instance_count

        refusals = {
            "it sent no client certificate, and dicom_tls_ca_file requires one": (
                "+tla",
                "+cf",
                str(certs.ca),
            ),
            "its client certificate has expired": (
                "+tls",
                str(certs.expired.key),
                str(certs.expired.cert),
                "+cf",
                str(certs.ca),
            ),
            "its client certificate is not signed by the CA in dicom_tls_ca_file": (
                "+tls",
                str(certs.stranger.key),
                str(certs.stranger.cert),
                "+cf",
                str(certs.ca),
            ),
            "it did not start TLS": (),
        }
        for words, options in refusals.items():
            caplog.clear()
            refused = _storescu(scp.port, study.files[:1], *options)
            assert refused.returncode != 0, words
            assert wait_until(lambda w=words: w in caplog.text, 10), (words, caplog.text)
            assert "Refused a TLS connection from 127.0.0.1: " in caplog.text
        assert scp.refused_connections == len(refusals)
        # After all that, the port still serves a right sender.
        again = _storescu(
            scp.port,
            study.files[:1],
            "+tls",
            str(certs.modality.key),
            str(certs.modality.cert),
            "+cf",
            str(certs.ca),
        )
        assert again.returncode == 0, again.stderr
    finally:
        scp.stop()
