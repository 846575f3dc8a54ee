"""Associations go out, and are accepted, with Nagle's algorithm off.

pynetdicom writes a request's command set and its identifier as two sends. With Nagle's
algorithm on, the identifier could wait for the PACS's delayed ACK, about 40 ms on Linux: a
STUDY-level C-FIND against Orthanc took 45 ms instead of 3 ms, paid by every job's planning
query and by every other C-FIND. The Storage SCP's side gets the same, so that no
response it sends to a PACS waits either (bench/retrieve.py measures whole jobs).

The other way round, a PACS that keeps Nagle on (dcmqrscp does, as DCMTK does by default)
holds the rest of each answer until we ACK its first segment, and Linux delays that ACK
once we have just sent a request: so after every PDU we send, our socket is back in quick-ACK
mode (a C-FIND to dcmqrscp took 46 ms, 4 ms with it). Read back from the kernel, which
turns the mode off again by itself after each send.
"""

from __future__ import annotations

import importlib
import socket
from collections.abc import Callable

from orthanc_server import wait_until
from pydicom.dataset import Dataset
from pynetdicom import AE, build_context, evt
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind, Verification
from pytest_orthanc import GATEWAY_AET

from pacs import association
from pacs.association import open_association


def _no_delay(sock: socket.socket) -> bool:
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


def _quick_ack_after_each_send(modes: list[bool]) -> tuple[evt.EventType, Callable]:
    """A handler bound after ours: records whether each PDU sent left quick-ACK mode on."""

    def record(event: evt.Event) -> None:
        sock = event.assoc.dul.socket.socket
        modes.append(bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK)))

    return (evt.EVT_DATA_SENT, record)


def test_associations_with_either_pacs_send_without_nagle(orthanc_running, dcmqrscp, make_peer):
    for server in (orthanc_running, dcmqrscp):
        peer = make_peer(server)
        contexts = [build_context(StudyRootQueryRetrieveInformationModelFind)]
        with open_association(peer, GATEWAY_AET, contexts) as assoc:
            assert _no_delay(assoc.dul.socket.socket), server.ae_title


def test_after_each_request_to_either_pacs_its_answer_is_acked_at_once(
    orthanc_running, dcmqrscp, make_peer
):
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientID = "NOBODY"
    query.StudyInstanceUID = ""
    for server in (orthanc_running, dcmqrscp):
        modes: list[bool] = []
        contexts = [build_context(StudyRootQueryRetrieveInformationModelFind)]
        recorder = _quick_ack_after_each_send(modes)
        with open_association(
            make_peer(server), GATEWAY_AET, contexts, evt_handlers=[recorder]
        ) as assoc:
            for _ in range(3):
                list(assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind))
        # Association request, three C-FINDs of two PDUs each, release request.
        assert len(modes) >= 8 and all(modes), (server.ae_title, modes)


def test_without_quick_acks_as_on_windows_associations_still_work(monkeypatch, dcmqrscp, make_peer):
    # Windows' socket module has no TCP_QUICKACK: only Nagle is turned off there.
    monkeypatch.delattr(socket, "TCP_QUICKACK")
    windows_like = importlib.reload(association)
    try:
        assert [event for event, _ in windows_like.TCP_HANDLERS] == [evt.EVT_CONN_OPEN]
        contexts = [build_context(Verification)]
        with windows_like.open_association(make_peer(dcmqrscp), GATEWAY_AET, contexts) as assoc:
            assert _no_delay(assoc.dul.socket.socket)
            assert assoc.send_c_echo().Status == 0
    finally:
        monkeypatch.undo()
        importlib.reload(association)


def test_associations_a_pacs_opens_to_the_storage_scp_answer_without_waits(scp):
    modes: list[bool] = []
    scp._server.bind(*_quick_ack_after_each_send(modes))
    ae = AE(ae_title="TESTSCU")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", scp.port, ae_title=GATEWAY_AET)
    try:
        assert assoc.is_established
        # The acceptor's side of this very connection, as the SCP holds it.
        assert wait_until(lambda: scp._server.active_associations, timeout=5)
        assert _no_delay(scp._server.active_associations[0].dul.socket.socket)
        for _ in range(3):
            assert assoc.send_c_echo().Status == 0
        # The association accept and three C-ECHO responses.
        assert wait_until(lambda: len(modes) >= 4, timeout=5)
        assert all(modes[:4]), modes
    finally:
        assoc.release()
