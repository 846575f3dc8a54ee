"""Failures a person has to understand: unreachable, rejected, stopped PACS."""

from __future__ import annotations

import time

import pytest
from orthanc_server import free_port

from pacs.echo import echo
from pacs.errors import AssociationRejected, PacsUnreachable
from pacs.models import Peer, StudyQuery
from pacs.query import find_studies

AET = "TESTSCU"


def test_nothing_listening_is_unreachable_and_says_so():
    port = free_port()
    peer = Peer(ae_title="PACS", host="127.0.0.1", port=port, name="main-pacs", connect_timeout=2)

    with pytest.raises(PacsUnreachable) as caught:
        echo(peer, AET)

    assert caught.value.transient
    assert caught.value.message == (
        f"The PACS main-pacs could not be reached: nothing is listening on 127.0.0.1:{port} "
        "(connection refused)."
    )


def test_a_stopped_pacs_is_unreachable_within_the_timeout(orthanc_factory, make_peer):
    server = orthanc_factory()
    server.start()
    peer = make_peer(server, connect_timeout=2.0, acse_timeout=2.0)
    assert echo(peer, AET) > 0
    server.stop()

    started = time.monotonic()
    with pytest.raises(PacsUnreachable):
        find_studies(peer, AET, StudyQuery(patient_id="R4-1001"))
    assert time.monotonic() - started < peer.connect_timeout + peer.acse_timeout


def test_a_silent_peer_times_out_instead_of_hanging():
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        peer = Peer(ae_title="PACS", host="127.0.0.1", port=port, acse_timeout=1.0)
        started = time.monotonic()
        with pytest.raises(PacsUnreachable, match="did not complete a DICOM association"):
            echo(peer, AET)
    assert time.monotonic() - started < 10


def test_wrong_called_ae_title_is_rejected_with_the_reason(orthanc_running, make_peer):
    peer = make_peer(orthanc_running, ae_title="NOTORTHANC")

    with pytest.raises(AssociationRejected) as caught:
        echo(peer, AET)

    assert "Called AE title not recognised" in caught.value.message
    assert "NOTORTHANC" in caught.value.message
    assert not caught.value.transient
