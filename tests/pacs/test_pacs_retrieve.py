"""C-MOVE and C-GET of whole studies from the real Orthanc, checked file by file."""

from __future__ import annotations

import threading

import pytest
from dicom_bytes import dataset_body
from orthanc_server import wait_until

from pacs.errors import DimseFailure, RetrieveCancelled
from pacs.models import LocalNode, StudyQuery
from pacs.query import find_studies
from pacs.retrieve import Progress, Retriever
from pacs.scp import StorageSCP
from pacs.store import StudyStore

MULTI_SERIES = "dubois-ext-mr-2024"  # three series, one of them RLE-compressed


def _assert_study_complete_and_identical(store: StudyStore, demo, orthanc) -> None:
    stored = sorted(store.study_dir(demo.study_uid).rglob("*.dcm"))
    assert len(stored) == demo.instance_count
    for series in demo.series:
        for instance in series.instances:
            path = store.path_for(demo.study_uid, series.series_uid, instance.sop_instance_uid)
            original = orthanc.instance_file(instance.sop_instance_uid)
            assert dataset_body(path.read_bytes()) == dataset_body(original), path.name
    assert list(store.incoming.iterdir()) == []


def _assert_monotonic_to_total(seen: list[Progress], total: int) -> None:
    received = [p.received for p in seen]
    assert received == sorted(received)
    assert received[-1] == total
    assert all(p.expected == total for p in seen)
    assert all(p.completed is None or p.completed <= total for p in seen)


@pytest.mark.parametrize("method", ["move", "get"])
def test_whole_multi_series_study_arrives_intact(
    method, retriever, store, make_peer, orthanc_running, demo_catalog
):
    demo = demo_catalog.study(MULTI_SERIES)
    peer = make_peer(orthanc_running, method)
    # The count the STUDY-level answer announces is the total until the listing is read.
    (study,) = find_studies(peer, "TESTSCU", StudyQuery(study_uid=demo.study_uid))
    seen: list[Progress] = []

    result = retriever.fetch_study(
        peer,
        demo.study_uid,
        progress=seen.append,
        expected=study.number_of_instances,
    )

    assert (result.expected, result.received_now, result.already_present) == (
        demo.instance_count,
        demo.instance_count,
        0,
    )
    assert result.bytes_stored == sum(
        p.stat().st_size for p in store.study_dir(demo.study_uid).rglob("*.dcm")
    )
    _assert_study_complete_and_identical(store, demo, orthanc_running)
    _assert_monotonic_to_total(seen, demo.instance_count)


@pytest.mark.parametrize("method", ["move", "get"])
def test_only_missing_instances_are_requested_again(
    method, retriever, store, make_peer, orthanc_running, demo_catalog
):
    demo = demo_catalog.study(MULTI_SERIES)
    peer = make_peer(orthanc_running, method)
    retriever.fetch_study(peer, demo.study_uid)
    gone = [
        store.path_for(demo.study_uid, s.series_uid, i.sop_instance_uid)
        for s in demo.series[:2]
        for i in s.instances[:3]
    ]
    for path in gone:
        path.unlink()

    result = retriever.fetch_study(peer, demo.study_uid)

    assert result.received_now == len(gone)
    assert result.already_present == demo.instance_count - len(gone)
    assert all(path.is_file() for path in gone)
    _assert_study_complete_and_identical(store, demo, orthanc_running)


def test_a_study_already_in_the_store_needs_no_retrieve(
    retriever, make_peer, orthanc_running, demo_catalog
):
    demo = demo_catalog.study("muller-io-2021")
    peer = make_peer(orthanc_running)
    retriever.fetch_study(peer, demo.study_uid)

    again = retriever.fetch_study(peer, demo.study_uid)

    assert (again.requests, again.received_now, again.already_present) == (
        0,
        0,
        demo.instance_count,
    )


def test_a_move_to_an_unknown_destination_says_what_to_configure(
    tmp_path, make_peer, orthanc_running, demo_catalog, gateway_scp_port
):
    stranger = LocalNode(ae_title="NOTREGISTERED", port=gateway_scp_port, bind_address="127.0.0.1")
    store = StudyStore(tmp_path / "studies")
    with StorageSCP(stranger, store, [orthanc_running.ae_title]) as scp:
        retriever = Retriever(stranger, store, scp)
        # Orthanc answers 0xC000 without a comment; a PACS sending 0xA801 gets
        # MoveDestinationUnknown with the same advice.
        with pytest.raises(DimseFailure) as caught:
            retriever.fetch_study(
                make_peer(orthanc_running), demo_catalog.study("muller-px-2023").study_uid
            )

    assert caught.value.status == 0xC000
    assert caught.value.message.endswith(
        "Nothing was sent: check that the PACS knows the gateway's AE title NOTREGISTERED "
        "as a move destination, with the gateway's host and port."
    )


@pytest.mark.parametrize("method", ["move", "get"])
def test_cancel_mid_retrieve_aborts_and_leaves_no_partial_file(
    method, retriever, store, make_peer, orthanc_running, demo_catalog
):
    demo = demo_catalog.study("dubois-ext-cbct-2023")
    cancel = threading.Event()

    def cancel_after_a_few(progress: Progress) -> None:
        if progress.received >= 5:
            cancel.set()

    with pytest.raises(RetrieveCancelled):
        retriever.fetch_study(
            make_peer(orthanc_running, method),
            demo.study_uid,
            progress=cancel_after_a_few,
            cancelled=cancel.is_set,
        )

    landed = list(store.study_dir(demo.study_uid).rglob("*.dcm"))
    assert 5 <= len(landed) < demo.instance_count
    for path in landed:
        original = orthanc_running.instance_file(path.stem)
        assert dataset_body(path.read_bytes()) == dataset_body(original)
    # With C-MOVE the PACS's own store association may still be closing: wait for it.
    assert wait_until(lambda: not any(store.incoming.iterdir()), timeout=15)
