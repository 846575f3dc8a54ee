from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_orthanc import GATEWAY_AET

from pacs.models import LocalNode, Peer
from pacs.retrieve import Retriever
from pacs.scp import StorageSCP
from pacs.store import StudyStore


@pytest.fixture
def local(gateway_scp_port: int) -> LocalNode:
    return LocalNode(ae_title=GATEWAY_AET, port=gateway_scp_port, bind_address="127.0.0.1")


def _peer_for(orthanc, method: str = "move", **overrides) -> Peer:
    values = {
        "name": "test-orthanc",
        "ae_title": orthanc.ae_title,
        "host": "127.0.0.1",
        "port": orthanc.dicom_port,
        "retrieve_method": method,
        "connect_timeout": 3.0,
        "acse_timeout": 5.0,
        "dimse_timeout": 30.0,
    }
    values.update(overrides)
    return Peer(**values)


@pytest.fixture
def make_peer():
    """Build a Peer for an OrthancServer, with overrides (method, timeouts, AE title)."""
    return _peer_for


@pytest.fixture
def peer(orthanc_running) -> Peer:
    return _peer_for(orthanc_running)


@pytest.fixture
def store(tmp_path: Path) -> StudyStore:
    return StudyStore(tmp_path / "studies")


@pytest.fixture
def scp(local: LocalNode, store: StudyStore, orthanc_running) -> Iterator[StorageSCP]:
    server = StorageSCP(local, store, [orthanc_running.ae_title, "DCMQRSCP", "TESTSCU", "STORESCU"])
    server.start()
    yield server
    server.stop()


@pytest.fixture
def retriever(local: LocalNode, store: StudyStore, scp: StorageSCP) -> Retriever:
    return Retriever(local, store, scp)
