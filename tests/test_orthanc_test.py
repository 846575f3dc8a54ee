"""Real tests of the test PACS helper: Orthanc lifecycle, demo data, charsets."""

from __future__ import annotations

import signal
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pydicom
import pytest
from demo_studies import (
    LATIN1_PATIENT_ID,
    SAME_PERSON_IDS,
    UTF8_PATIENT_ID,
    DemoCatalog,
    store,
)
from orthanc_server import HOST, OrthancServer, c_echo, process_exists, wait_until
from pydicom.dataset import Dataset
from pydicom.uid import RLELossless
from pynetdicom import AE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    Verification,
)
from pytest_orthanc import GATEWAY_AET, OrthancFactory

ORTHANC_TEST_DIR = Path(__file__).resolve().parents[1] / "orthanc-test"


def dataset_part(part10: bytes) -> bytes:
    """Everything after the file meta group.

    Orthanc rewrites the meta header (its own ImplementationClassUID, version
    name, SourceApplicationEntityTitle), so only the dataset can be identical.
    """
    assert part10[128:132] == b"DICM"
    # (0002,0000) UL, explicit VR: tag 4 + VR 2 + length 2, then the 4-byte value.
    assert part10[132:138] == b"\x02\x00\x00\x00UL"
    (group_length,) = struct.unpack("<I", part10[140:144])
    return part10[144 + group_length :]


def find_studies(port: int, called_aet: str, **keys: str) -> list[Dataset]:
    ae = AE(ae_title="FINDTEST")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    query = Dataset()
    query.SpecificCharacterSet = "ISO_IR 192"
    query.QueryRetrieveLevel = "STUDY"
    for keyword in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "StudyInstanceUID",
        "ModalitiesInStudy",
        "NumberOfStudyRelatedInstances",
        "NumberOfStudyRelatedSeries",
    ):
        setattr(query, keyword, keys.get(keyword, ""))
    assoc = ae.associate(HOST, port, ae_title=called_aet)
    assert assoc.is_established
    try:
        answers = [
            identifier
            for status, identifier in assoc.send_c_find(
                query, StudyRootQueryRetrieveInformationModelFind
            )
            if status and status.Status in (0xFF00, 0xFF01)
        ]
    finally:
        assoc.release()
    return answers


def test_starts_and_answers_c_echo_only_to_its_own_ae_title(orthanc_factory: OrthancFactory):
    server = orthanc_factory(ae_title="TESTPACS")
    assert server.is_running
    assert server.url == f"http://127.0.0.1:{server.http_port}"

    ae = AE(ae_title="ECHOTEST")
    ae.add_requested_context(Verification)
    assoc = ae.associate(HOST, server.dicom_port, ae_title="TESTPACS")
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()
    # DicomCheckCalledAet: a PACS that answers any called AE would hide config bugs.
    assert not c_echo(HOST, server.dicom_port, "SOMEONEELSE")


def test_demo_studies_are_all_loaded(orthanc_running: OrthancServer, demo_catalog: DemoCatalog):
    assert orthanc_running.instance_count() == demo_catalog.instance_count
    assert orthanc_running.study_uids() == {s.study_uid for s in demo_catalog.studies}
    cbct = demo_catalog.study("dubois-ext-cbct-2023")
    assert orthanc_running.study_instance_uids(cbct.study_uid) == set(cbct.sop_instance_uids)
    assert orthanc_running.orthanc_modalities()["gateway"]["AET"] == GATEWAY_AET


def test_instance_file_has_the_generated_dataset(
    orthanc_running: OrthancServer, demo_catalog: DemoCatalog
):
    mr = demo_catalog.study("dubois-ext-mr-2024")
    rle = next(s for s in mr.series if s.transfer_syntax_uid == RLELossless)
    latin1 = demo_catalog.studies_for(LATIN1_PATIENT_ID)[0]
    for instance in (rle.instances[0], latin1.series[0].instances[0]):
        stored = orthanc_running.instance_file(instance.sop_instance_uid)
        assert dataset_part(stored) == dataset_part(instance.path.read_bytes())


@pytest.mark.parametrize("patient_id", [LATIN1_PATIENT_ID, UTF8_PATIENT_ID])
def test_c_find_returns_accented_names_exactly(
    orthanc_running: OrthancServer, demo_catalog: DemoCatalog, patient_id: str
):
    patient = demo_catalog.patient(patient_id)
    family = patient.name.split("^")[0]
    # Match on the accented name itself, so the query's encoding is exercised too.
    answers = find_studies(
        orthanc_running.dicom_port, orthanc_running.ae_title, PatientName=f"{family}*"
    )
    assert {str(a.PatientName) for a in answers} == {patient.name}
    assert {a.StudyInstanceUID for a in answers} == {
        s.study_uid for s in demo_catalog.studies_for(patient_id)
    }


def test_c_find_reports_study_counts_and_modalities(
    orthanc_running: OrthancServer, demo_catalog: DemoCatalog
):
    visit = demo_catalog.study("vanderberg-visit-2019")
    (answer,) = find_studies(
        orthanc_running.dicom_port, orthanc_running.ae_title, StudyInstanceUID=visit.study_uid
    )
    assert set(answer.ModalitiesInStudy) == visit.modalities == {"IO", "PX"}
    assert int(answer.NumberOfStudyRelatedInstances) == visit.instance_count
    assert int(answer.NumberOfStudyRelatedSeries) == len(visit.series)


def test_stop_then_start_keeps_ports_data_and_modalities(
    orthanc_factory: OrthancFactory, demo_catalog: DemoCatalog
):
    server = orthanc_factory()
    study = demo_catalog.study("dubois-ext-mr-2024")
    store(study.files, HOST, server.dicom_port, server.ae_title)
    server.add_modality("viewer", "VIEWER", HOST, 11112)
    assert server.orthanc_modalities()["viewer"]["AET"] == "VIEWER"
    ports, pid = (server.dicom_port, server.http_port), server.pid
    assert pid is not None

    server.stop()
    assert not server.is_running
    assert not process_exists(pid)  # stop() returns only once Orthanc has exited
    assert not c_echo(HOST, ports[0], server.ae_title, timeout=0.5)

    server.start()
    assert (server.dicom_port, server.http_port) == ports
    assert server.study_instance_uids(study.study_uid) == set(study.sop_instance_uids)
    assert server.orthanc_modalities()["viewer"]["AET"] == "VIEWER"


def test_kill_then_restart_on_the_same_folder(orthanc_factory: OrthancFactory):
    server = orthanc_factory()
    pid = server.pid
    assert pid is not None
    server.kill()
    assert not process_exists(pid)
    # A second Orthanc on the folder would hit the SQLite lock if the first lived on.
    server.start()
    assert c_echo(HOST, server.dicom_port, server.ae_title)


def test_orthanc_dies_with_the_process_that_started_it(tmp_path: Path):
    script = textwrap.dedent(
        f"""
        import sys, threading
        sys.path.insert(0, {str(ORTHANC_TEST_DIR)!r})
        from pathlib import Path
        from orthanc_server import OrthancServer
        server = OrthancServer(Path({str(tmp_path)!r}))
        server.start()
        print(server.pid, flush=True)
        threading.Event().wait()
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        orthanc_pid = int(parent.stdout.readline())
        assert process_exists(orthanc_pid)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    assert wait_until(lambda: not process_exists(orthanc_pid), timeout=5)


def test_generated_files_match_the_catalog(demo_catalog: DemoCatalog):
    same_person = [demo_catalog.patient(pid) for pid in SAME_PERSON_IDS]
    assert same_person[0].name == same_person[1].name
    assert same_person[0].birth_date == same_person[1].birth_date
    for study in demo_catalog.studies:
        for series in study.series:
            ds = pydicom.dcmread(series.files[0], stop_before_pixels=True)
            assert ds.StudyInstanceUID == study.study_uid
            assert ds.SeriesInstanceUID == series.series_uid
            assert ds.SOPInstanceUID == series.sop_instance_uids[0]
            assert ds.file_meta.TransferSyntaxUID == series.transfer_syntax_uid
            assert str(ds.PatientName) == demo_catalog.patient(study.patient_id).name
