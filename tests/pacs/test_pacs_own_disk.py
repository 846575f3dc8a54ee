"""Our disk, our words: when the gateway's own store is full, every PACS is told so per image
(0xA700) and the retrieve says it is the gateway's disk, with its free space. A real tmpfs
smaller than the study, against Orthanc and dcmqrscp, by C-MOVE and C-GET."""

from __future__ import annotations

import pytest
from pytest_orthanc import PLAIN_STUDY

from pacs.errors import OwnStoreRefused
from pacs.retrieve import Retriever
from pacs.scp import StorageSCP
from pacs.store import StudyStore


@pytest.fixture
def half_a_study(small_disks, demo_catalog):
    """A store on a disk that holds about half of PLAIN_STUDY."""
    study = demo_catalog.study(PLAIN_STUDY)
    root = small_disks(sum(p.stat().st_size for p in study.files) // 2)
    return StudyStore(root / "studies"), study


@pytest.mark.parametrize("pacs", ["orthanc_running", "dcmqrscp"])
@pytest.mark.parametrize("method", ["move", "get"])
def test_a_full_disk_is_the_gateways_own_in_its_words(
    pacs, method, request, local, half_a_study, make_peer
):
    store, study = half_a_study
    server = request.getfixturevalue(pacs)
    scp = StorageSCP(local, store, [server.ae_title])
    scp.start()
    try:
        retriever = Retriever(local, store, scp)
        with pytest.raises(OwnStoreRefused) as refused:
            peer = make_peer(server, method, dimse_timeout=20.0)
            retriever.fetch_study(peer, study.study_uid, max_requests=1)
    finally:
        scp.stop()

    message = str(refused.value)
    assert message.startswith("The gateway's own disk would not take the images: ")
    assert " MB free where the gateway keeps studies" in message
    assert "AE title" not in message and "refused" not in message
    assert refused.value.transient  # once there is room, trying again helps
    # The association survived each refusal: what fitted was stored, whole.
    stored = list(store.study_dir(study.study_uid).rglob("*.dcm"))
    assert 0 < len(stored) < study.instance_count
    assert refused.value.missing == study.instance_count - len(stored)
    if method == "move":
        assert scp.store_failures > 0
    # Nothing half-written is left behind.
    assert list(store.incoming.iterdir()) == []
