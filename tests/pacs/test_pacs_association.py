"""Associations go out, and are accepted, with Nagle's algorithm off.

pynetdicom writes a request's command set and its identifier as two sends. With Nagle's
algorithm on, the identifier could wait for the PACS's delayed ACK, about 40 ms on Linux: a
STUDY-level C-FIND against Orthanc took 45 ms instead of 3 ms, paid by every job's planning
query and by every other C-FIND. The Storage SCP's side gets the same, so that no
response it sends to a PACS waits either (bench/retrieve.py measures whole jobs).
"""

from __future__ import annotations

import socket

from orthanc_server import wait_until
from pynetdicom import AE, build_context
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind, Verification
from pytest_orthanc import GATEWAY_AET

from pacs.association import open_association


def _no_delay(sock: socket.socket) -> bool:
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


def test_associations_with_either_pacs_send_without_nagle(orthanc_running, dcmqrscp, make_peer):
    for server in (orthanc_running, dcmqrscp):
        peer = make_peer(server)
        contexts = [build_context(StudyRootQueryRetrieveInformationModelFind)]
        with open_association(peer, GATEWAY_AET, contexts) as assoc:
            assert _no_delay(assoc.dul.socket.socket), server.ae_title


def test_associations_a_pacs_opens_to_the_storage_scp_answer_without_nagle(scp):
    ae = AE(ae_title="TESTSCU")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", scp.port, ae_title=GATEWAY_AET)
    try:
        assert assoc.is_established
        # The acceptor's side of this very connection, as the SCP holds it.
        assert wait_until(lambda: scp._server.active_associations, timeout=5)
        assert _no_delay(scp._server.active_associations[0].dul.socket.socket)
    finally:
        assoc.release()
