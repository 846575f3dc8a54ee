"""Fetching from two independent PACS, Orthanc and DCMTK's dcmqrscp, by C-MOVE, C-GET and
"auto", checked against the files that were loaded into them."""

from __future__ import annotations

from pathlib import Path

import pytest
from dicom_bytes import dataset_body
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pytest_orthanc import MIX_COMPANION_STUDY, PLAIN_STUDY

from pacs.errors import RetrieveIncomplete, SubOperationsFailed
from pacs.models import PacsPatient, Peer, StudyQuery
from pacs.query import find_studies
from pacs.retrieve import Retriever
from pacs.store import StudyStore

MISSING_CLASSES_NOTICE = "The PACS did not say which kinds of images this study holds"


def _peer(server, method: str) -> Peer:
    return Peer(
        name=f"test-{server.ae_title.lower()}",
        ae_title=server.ae_title,
        host="127.0.0.1",
        port=server.dicom_port,
        retrieve_method=method,
        connect_timeout=3.0,
        acse_timeout=5.0,
        dimse_timeout=20.0,
    )


def _syntax(path: Path) -> str:
    return str(dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)


def _assert_as_loaded(store: StudyStore, study, *, implicit_becomes_explicit: bool) -> None:
    """Every file arrived with the dataset, pixel bytes and transfer syntax it was loaded with.

    dcmqrscp 3.6.7 sends every image of one SOP class in the syntax of the first context
    accepted for that class and converts between uncompressed syntaxes on its own: its
    Implicit VR files arrive as Explicit VR (same elements, same pixel bytes).
    """
    stored = sorted(store.study_dir(study.study_uid).rglob("*.dcm"))
    assert len(stored) == study.instance_count
    for series in study.series:
        for instance in series.instances:
            path = store.path_for(study.study_uid, series.series_uid, instance.sop_instance_uid)
            loaded = instance.path.read_bytes()
            if implicit_becomes_explicit and series.transfer_syntax_uid == ImplicitVRLittleEndian:
                assert _syntax(path) == ExplicitVRLittleEndian
                got, want = dcmread(path), dcmread(instance.path)
                assert got.PixelData == want.PixelData
                assert [e.tag for e in got] == [e.tag for e in want]
                assert all(got[e.tag].value == e.value for e in want), path.name
                continue
            assert _syntax(path) == series.transfer_syntax_uid, series.description
            assert dataset_body(path.read_bytes()) == dataset_body(loaded), series.description
    assert list(store.incoming.iterdir()) == []


@pytest.mark.parametrize("method", ["move", "get", "auto"])
def test_orthanc_sends_every_syntax_as_stored(
    method, local, store, scp, orthanc_with_mix, format_mix
):
    retriever = Retriever(local, store, scp)
    peer = _peer(orthanc_with_mix, method)
    # As a fetch job does: the STUDY-level answer's modalities let a C-GET start at once.
    (study,) = find_studies(peer, "TESTSCU", StudyQuery(study_uid=format_mix.study_uid))
    assert set(study.modalities) == {"MR", "OT"}

    result = retriever.fetch_study(peer, format_mix.study_uid, modalities=study.modalities)

    assert result.received_now == format_mix.instance_count
    # Orthanc lists the SOP class of each image: nothing to assume, nothing to retry.
    assert (result.requests, result.notices) == (1, ())
    _assert_as_loaded(store, format_mix, implicit_becomes_explicit=False)


@pytest.mark.parametrize("pacs", ["orthanc_running", "dcmqrscp"])
@pytest.mark.parametrize("method", ["move", "get"])
@pytest.mark.parametrize("announced_extra", [0, 3], ids=["counts-agree", "study-count-differs"])
def test_the_instance_list_is_the_same_whether_or_not_the_pacs_counts_agree(
    pacs, method, announced_extra, request, local, store, scp, demo_catalog
):
    # With agreeing counts, what landed is the list (no IMAGE-level C-FIND); a STUDY-level
    # count that says more than arrived sends the retriever to the listing, which has the
    # last word: the PACS holds what it lists, not what it announced.
    study = demo_catalog.study(PLAIN_STUDY)
    peer = _peer(request.getfixturevalue(pacs), method)

    result = Retriever(local, store, scp).fetch_study(
        peer, study.study_uid, expected=study.instance_count + announced_extra
    )

    assert (result.expected, result.received_now) == (study.instance_count, study.instance_count)
    listed = {
        i.sop_instance_uid: (i.series_uid, i.sop_class_uid, i.number) for i in result.instances
    }
    assert listed == {
        instance.sop_instance_uid: (
            series.series_uid,
            series.sop_class_uid,
            int(dcmread(instance.path, stop_before_pixels=True).InstanceNumber),
        )
        for series in study.series
        for instance in series.instances
    }
    _assert_as_loaded(store, study, implicit_becomes_explicit=pacs == "dcmqrscp")


@pytest.mark.parametrize("pacs", ["orthanc_running", "dcmqrscp"])
@pytest.mark.parametrize("method", ["move", "get"])
def test_only_files_of_the_patient_the_pacs_answered_count(
    pacs, method, request, local, store, scp, demo_catalog
):
    """Each file must carry the PatientID of the PACS's C-FIND answer: what does not is held
    back, never counted or served, and the retrieve says images are missing."""
    study = demo_catalog.study(PLAIN_STUDY)
    peer = _peer(request.getfixturevalue(pacs), method)
    retriever = Retriever(local, store, scp)
    someone_else = PacsPatient(patient_id="SOMEONE-ELSE")

    with pytest.raises(RetrieveIncomplete) as refused:
        retriever.fetch_study(peer, study.study_uid, patient=someone_else, max_requests=1)

    assert refused.value.missing == study.instance_count
    assert not store.study_dir(study.study_uid).exists()
    held = store.held_files("quarantine")
    assert len(held) == study.instance_count
    assert {dcmread(p, stop_before_pixels=True).PatientID for p in held} == {study.patient_id}

    (answer,) = find_studies(peer, "TESTSCU", StudyQuery(study_uid=study.study_uid))
    result = retriever.fetch_study(peer, study.study_uid, patient=answer.patient)
    assert (result.received_now, result.held_back) == (study.instance_count, 0)
    _assert_as_loaded(store, study, implicit_becomes_explicit=pacs == "dcmqrscp")


@pytest.mark.parametrize("method", ["get", "auto"])
def test_dcmqrscp_sends_every_image_by_c_get_without_listing_sop_classes(
    method, local, store, scp, dcmqrscp, format_mix, demo_catalog
):
    retriever = Retriever(local, store, scp)
    peer = _peer(dcmqrscp, method)
    events: list[str] = []

    for study in (format_mix, demo_catalog.study(MIX_COMPANION_STUDY)):
        result = retriever.fetch_study(peer, study.study_uid, notice=events.append)

        assert result.received_now == study.instance_count
        assert result.notices[0].startswith(MISSING_CLASSES_NOTICE)
        # What the index records: the class each image arrived as, since the listing had none.
        classes = {i.sop_instance_uid: i.sop_class_uid for i in result.instances}
        assert classes == {
            uid: series.sop_class_uid for series in study.series for uid in series.sop_instance_uids
        }
        _assert_as_loaded(store, study, implicit_becomes_explicit=True)
    # Each decision reaches the caller as it happens (the job turns them into events).
    assert sum(e.startswith(MISSING_CLASSES_NOTICE) for e in events) == 2


def test_dcmqrscp_c_move_of_a_class_held_in_several_syntaxes_fails_saying_what(
    local, store, scp, dcmqrscp, format_mix
):
    retriever = Retriever(local, store, scp)

    with pytest.raises(SubOperationsFailed) as failed:
        retriever.fetch_study(_peer(dcmqrscp, "move"), format_mix.study_uid)

    # Its outgoing profile offers Explicit VR first for each class; it cannot convert the
    # compressed files to it. Retrying the same C-MOVE cannot change that.
    assert not failed.value.transient
    assert (failed.value.missing, failed.value.expected) == (7, format_mix.instance_count)
    message = failed.value.message
    assert "did not send 7 of 12 images (modality MR; modality OT) by C-MOVE" in message
    assert "0xB000" in message and 'retrieve_method to "auto"' in message
    assert "Format" not in message and format_mix.patient_id not in message
    uncompressed = [
        s for s in format_mix.series if s.transfer_syntax_uid in (ExplicitVRLittleEndian,)
    ]
    for series in uncompressed:
        for instance in series.instances:
            path = store.path_for(
                format_mix.study_uid, series.series_uid, instance.sop_instance_uid
            )
            assert dataset_body(path.read_bytes()) == dataset_body(instance.path.read_bytes())
