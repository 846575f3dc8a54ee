"""C-ECHO and C-FIND against the real Orthanc loaded with the demo studies."""

from __future__ import annotations

import threading
import time
from datetime import date

import demo_studies
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

from pacs.echo import echo
from pacs.errors import IdleTimeout, TooManyMatches
from pacs.models import Peer, StudyQuery
from pacs.query import find_instances, find_series, find_studies

AET = "TESTSCU"


def test_echo_answers_with_a_round_trip_time(peer):
    seconds = echo(peer, AET)
    assert 0 < seconds < 5


def test_find_by_patient_id_returns_that_patients_studies(peer, demo_catalog):
    patient_id = demo_studies.LATIN1_PATIENT_ID
    studies = find_studies(peer, AET, StudyQuery(patient_id=patient_id))

    expected = {s.study_uid: s for s in demo_catalog.studies_for(patient_id)}
    assert {s.study_uid for s in studies} == set(expected)
    for study in studies:
        demo = expected[study.study_uid]
        assert study.study_date == date.fromisoformat(
            f"{demo.date[:4]}-{demo.date[4:6]}-{demo.date[6:]}"
        )
        assert set(study.modalities) == set(demo.modalities)
        assert study.number_of_instances == demo.instance_count
        assert study.description == demo.description
        assert study.patient.patient_id == patient_id


def test_find_by_name_and_birth_date_finds_studies_filed_under_both_ids(peer, demo_catalog):
    query = StudyQuery(patient_name="Dubois^Jean-Pierre", birth_date=date(1975, 11, 5))
    studies = find_studies(peer, AET, query)

    ids = set(demo_studies.SAME_PERSON_IDS)
    expected = {s.study_uid for pid in ids for s in demo_catalog.studies_for(pid)}
    assert {s.study_uid for s in studies} == expected
    assert {s.patient.patient_id for s in studies} == ids


def test_find_by_date_range_and_modality(peer, demo_catalog):
    outside_id = demo_studies.SAME_PERSON_IDS[1]
    by_range = find_studies(
        peer,
        AET,
        StudyQuery(patient_id=outside_id, date_from=date(2024, 1, 1), date_to=date(2024, 12, 31)),
    )
    by_modality = find_studies(peer, AET, StudyQuery(patient_id=outside_id, modalities=("CT",)))

    assert [s.study_uid for s in by_range] == [demo_catalog.study("dubois-ext-mr-2024").study_uid]
    assert [s.study_uid for s in by_modality] == [
        demo_catalog.study("dubois-ext-cbct-2023").study_uid
    ]


@pytest.mark.parametrize(
    ("patient_id", "family", "given"),
    [
        (demo_studies.LATIN1_PATIENT_ID, "Müller", "Zoë"),
        (demo_studies.UTF8_PATIENT_ID, "Łukasiewicz", "Małgorzata"),
    ],
)
def test_accented_names_survive_the_round_trip(peer, patient_id, family, given):
    studies = find_studies(peer, AET, StudyQuery(patient_id=patient_id))

    assert studies
    for study in studies:
        assert (study.patient.name.family, study.patient.name.given) == (family, given)


def test_accented_name_matches_in_a_name_query(peer, demo_catalog):
    query = StudyQuery(patient_name="Łukasiewicz^Małgorzata", birth_date=date(1990, 7, 21))
    studies = find_studies(peer, AET, query)

    expected = {s.study_uid for s in demo_catalog.studies_for(demo_studies.UTF8_PATIENT_ID)}
    assert {s.study_uid for s in studies} == expected


def test_series_and_instance_listing_matches_what_the_pacs_holds(peer, demo_catalog):
    demo = demo_catalog.study("dubois-ext-mr-2024")

    series = find_series(peer, AET, demo.study_uid)
    instances = find_instances(peer, AET, demo.study_uid)

    assert {s.series_uid for s in series} == {s.series_uid for s in demo.series}
    assert {i.sop_instance_uid for i in instances} == set(demo.sop_instance_uids)
    assert {i.sop_class_uid for i in instances} == set(demo.sop_class_uids)


def test_a_query_without_patient_or_study_is_refused_before_the_network():
    with pytest.raises(ValueError, match="needs a patient id"):
        StudyQuery(date_from=date(2020, 1, 1))


def test_a_reversed_date_range_is_refused():
    with pytest.raises(ValueError, match="ends before it starts"):
        StudyQuery(patient_id="X", date_from=date(2021, 1, 1), date_to=date(2020, 1, 1))


def test_concurrent_queries_respect_the_association_limit(
    make_peer, orthanc_running, demo_catalog, monkeypatch
):
    import threading

    from pynetdicom import AE
    from pynetdicom.association import Association

    peer = make_peer(orthanc_running, max_associations=1)
    open_now, peak, lock = 0, 0, threading.Lock()
    associate, release = AE.associate, Association.release

    def counting_associate(self, *args, **kwargs):
        nonlocal open_now, peak
        assoc = associate(self, *args, **kwargs)
        with lock:
            open_now += 1
            peak = max(peak, open_now)
        return assoc

    def counting_release(self):
        nonlocal open_now
        with lock:
            open_now -= 1
        return release(self)

    monkeypatch.setattr(AE, "associate", counting_associate)
    monkeypatch.setattr(Association, "release", counting_release)
    studies = [s.study_uid for s in demo_catalog.studies[:4]]
    results: dict[str, int] = {}

    def list_one(uid: str) -> None:
        results[uid] = len(find_instances(peer, AET, uid))

    threads = [threading.Thread(target=list_one, args=(uid,)) for uid in studies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert results == {s.study_uid: s.instance_count for s in demo_catalog.studies[:4]}
    assert peak == 1


@pytest.mark.parametrize(
    "keys",
    [
        {"patient_id": "*"},
        {"patient_id": "R4-100?"},
        {"patient_id": "R4-1001\\R4-1002"},
        {"patient_id": "   "},
        {"patient_id": "R4-1001", "issuer_of_patient_id": "NORTH*"},
        {"study_uid": "1.2.*"},
        {"patient_id": "R4-1001", "modalities": ("CT", "M?")},
    ],
)
def test_a_literal_key_with_a_matching_character_is_refused(keys):
    with pytest.raises(ValueError, match="must not"):
        StudyQuery(**keys)


def test_the_recheck_of_a_name_query_matches_names_as_the_pacs_does(peer):
    """Orthanc matches PN case-insensitively: our re-check must too, or a name query the
    gateway builds for matching would drop the very answers it asked for."""
    left_out: list[str] = []
    query = StudyQuery(patient_name="dubois*", birth_date=date(1975, 11, 5))
    studies = find_studies(peer, AET, query, on_foreign=lambda s: left_out.append(s.study_uid))
    assert {s.patient.patient_id for s in studies} == set(demo_studies.SAME_PERSON_IDS)
    assert left_out == []


def test_an_answer_whose_study_uid_is_not_a_uid_is_left_out(
    orthanc_factory, demo_catalog, tmp_path
):
    """A PACS that stores what it is sent (Orthanc does) can answer a StudyInstanceUID such as
    "1.2.*": asked for again by C-MOVE or C-GET, that would be a wildcard. It never leaves
    find_studies."""
    server = orthanc_factory()
    good = demo_catalog.studies_for(demo_studies.LATIN1_PATIENT_ID)[0]
    source = good.files[0]
    crafted = dcmread(source)
    crafted.StudyInstanceUID = "1.2.826.0.1.*"
    crafted.SeriesInstanceUID = "1.2.826.0.1.99.1"
    crafted.SOPInstanceUID = "1.2.826.0.1.99.1.1"
    bad_file = tmp_path / "crafted.dcm"
    crafted.save_as(bad_file)
    demo_studies.store([source, bad_file], "127.0.0.1", server.dicom_port, server.ae_title)
    peer = Peer(server.ae_title, "127.0.0.1", server.dicom_port)

    studies = find_studies(peer, AET, StudyQuery(patient_id=demo_studies.LATIN1_PATIENT_ID))

    assert [s.study_uid for s in studies] == [good.study_uid]


def _tiny_studies(folder, patient_id: str, count: int) -> list:
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    paths = []
    for number in range(count):
        ds = Dataset()
        ds.PatientID = patient_id
        ds.PatientName = "Many^Studies"
        ds.StudyInstanceUID = generate_uid()
        ds.SeriesInstanceUID = generate_uid()
        ds.SOPInstanceUID = generate_uid()
        ds.SOPClassUID = SecondaryCaptureImageStorage
        ds.StudyDate = "20240101"
        ds.Modality = "OT"
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        path = folder / f"{number}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def test_a_query_answering_more_than_the_cap_stops_there_and_says_so(
    orthanc_factory, make_peer, tmp_path
):
    orthanc = orthanc_factory()
    orthanc.upload(_tiny_studies(tmp_path, "MANY-1", 30))
    query = StudyQuery(patient_id="MANY-1")

    assert len(find_studies(make_peer(orthanc), AET, query)) == 30

    with pytest.raises(TooManyMatches) as refused:
        find_studies(make_peer(orthanc, max_find_matches=12), AET, query)
    assert "more than 12 matches" in refused.value.message
    assert "narrower date range" in refused.value.message
    assert not refused.value.transient


def test_a_pacs_silent_after_the_request_is_our_timeout_not_its_abort():
    """A real pynetdicom SCP whose C-FIND handler never answers (until the test ends)."""
    release = threading.Event()

    def never(event):
        release.wait(30)
        yield 0x0000, None

    ae = AE(ae_title="SILENTPACS")
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_FIND, never)])
    try:
        peer = Peer(
            ae_title="SILENTPACS",
            host="127.0.0.1",
            port=server.server_address[1],
            dimse_timeout=1.0,
            name="silent",
        )
        started = time.monotonic()
        with pytest.raises(IdleTimeout) as stopped:
            find_studies(peer, AET, StudyQuery(patient_id="P1"))
        assert time.monotonic() - started < 10
        assert "did not answer the C-FIND within 1 s" in stopped.value.message
    finally:
        release.set()
        server.shutdown()
