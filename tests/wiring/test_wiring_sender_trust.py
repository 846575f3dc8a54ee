"""Only what was asked, from whom it was asked: attacks on the Storage SCP from a second
loopback address (127.0.0.2), against the real Orthanc.

The attacker's sender is pynetdicom bound to 127.0.0.2; the PACS is Orthanc on 127.0.0.1,
configured as the gateway's PACS with host 127.0.0.1.
"""

from __future__ import annotations

import re
import socket
from html import unescape
from pathlib import Path

from dicom_bytes import dataset_body
from fastapi.testclient import TestClient
from orthanc_server import HOST, wait_until
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, build_context
from pynetdicom.sop_class import Verification
from pytest_orthanc import GATEWAY_AET, GATEWAY_MODALITY, PLAIN_STUDY
from wiring_senders import MODALITY_AET

import jobs
from gateway.app import create_app
from gateway.fetch.request import FetchRequest
from gateway.review.audit import AuditAction, study_subject
from pacs.scp import Expected

ATTACKER = "127.0.0.2"


def _associate(port: int, calling_aet: str, source: str = HOST, contexts=None):
    ae = AE(ae_title=calling_aet)
    ae.requested_contexts = contexts or [build_context(Verification)]
    ae.acse_timeout = 5
    return ae.associate(HOST, port, ae_title=GATEWAY_AET, bind_address=(source, 0))


def _send(port: int, calling_aet: str, datasets: list[Dataset], source: str) -> list[int]:
    contexts = {(str(d.SOPClassUID), str(d.file_meta.TransferSyntaxUID)) for d in datasets}
    assoc = _associate(
        port, calling_aet, source, [build_context(s, t) for s, t in sorted(contexts)]
    )
    assert assoc.is_established
    try:
        return [int(assoc.send_c_store(ds).Status) for ds in datasets]
    finally:
        assoc.release()


def _planted(path: Path) -> Dataset:
    """A copy of a real image under its own UIDs, filed under another patient."""
    ds = dcmread(path)
    ds.PatientID = "ATTACKER-1"
    ds.PatientName = "Planted^Copy"
    return ds


def _fetch(gateway, study) -> jobs.Job:
    job, _ = gateway.submit_fetch(
        FetchRequest(pacs_patient_id=study.patient_id, study_uids=[study.study_uid])
    )
    finished = {s.value for s in jobs.FINISHED_STATES}
    assert wait_until(lambda: gateway.jobs.get(job.id).state in finished, 120)
    return gateway.jobs.get(job.id)


def _stored(gateway, study, sop_uid: str) -> Path:
    series = next(s for s in study.series if sop_uid in s.sop_instance_uids)
    return gateway.node.store.path_for(study.study_uid, series.series_uid, sop_uid)


def test_the_pacs_ae_title_is_let_in_only_from_the_pacs_host(
    wired_gateway, orthanc_running, gateway_scp_port
):
    gateway = wired_gateway(orthanc_running, allowed_calling_aets=[f"{MODALITY_AET}@{ATTACKER}"])

    impostor = _associate(gateway_scp_port, orthanc_running.ae_title, ATTACKER)
    assert impostor.is_rejected
    assert impostor.acceptor.primitive.result == 0x01  # permanent: asking again will not help

    pacs = _associate(gateway_scp_port, orthanc_running.ae_title, HOST)
    assert pacs.is_established
    assert pacs.send_c_echo().Status == 0x0000
    pacs.release()

    # An allowed sender written with its address: from there only.
    assert _associate(gateway_scp_port, MODALITY_AET, HOST).is_rejected
    modality = _associate(gateway_scp_port, MODALITY_AET, ATTACKER)
    assert modality.is_established
    modality.release()
    assert gateway.node.scp.refused_associations == 2


def test_a_copy_planted_before_the_fetch_is_replaced_by_the_pacs_own(
    wired_gateway, orthanc_running, demo_catalog, gateway_scp_port
):
    # An older configuration: the modality may send from anywhere.
    gateway = wired_gateway(orthanc_running, allowed_calling_aets=[MODALITY_AET])
    study = demo_catalog.study(PLAIN_STUDY)
    source = study.files[0]
    planted = _planted(source)
    assert _send(gateway_scp_port, MODALITY_AET, [planted], ATTACKER) == [0x0000]
    assert gateway.pushes.wait_idle(30)
    target = _stored(gateway, study, str(planted.SOPInstanceUID))
    assert dcmread(target).PatientID == "ATTACKER-1"  # there, as a push

    done = _fetch(gateway, study)

    assert done.state == "succeeded", done.message
    # Every file served is the PACS's own, byte for byte; the planted copy is kept aside.
    for path in study.files:
        ds = dcmread(path, stop_before_pixels=True)
        stored = _stored(gateway, study, str(ds.SOPInstanceUID))
        assert dataset_body(stored.read_bytes()) == dataset_body(path.read_bytes())
    assert dataset_body(target.read_bytes()) == dataset_body(source.read_bytes())
    (aside,) = gateway.node.store.held_files("replaced")
    assert dcmread(aside).PatientID == "ATTACKER-1"
    indexed = gateway.index.study(study.study_uid)
    assert indexed.pacs_patient_id == study.patient_id
    assert indexed.instance_count == study.instance_count
    (event,) = [
        e
        for e in gateway.audit.list(subject=study_subject(study.study_uid))
        if e.action == AuditAction.STUDY_REPLACED
    ]
    assert "PatientID" in event.after["change"] and "PatientName" in event.after["change"]
    # The push itself was recorded with its sender's address.
    (received,) = [
        e
        for e in gateway.audit.list(subject=study_subject(study.study_uid))
        if e.action == AuditAction.STUDY_RECEIVED
    ]
    assert received.after["address"] == ATTACKER
    # The push still waits for review; were staff to assign it to someone, the PACS's files
    # that replaced it would not be filed under the pushed patient.
    item = gateway.review.open_for_study(study.study_uid)
    assert item is not None and item.pacs_patient["patient_id"] == "ATTACKER-1"
    assert gateway.attach_pushed_study(item) is None
    assert gateway.index.study(study.study_uid).pacs_patient_id == study.patient_id


def test_a_file_claiming_a_study_being_retrieved_is_held_back(
    wired_gateway, orthanc_running, demo_catalog, gateway_scp_port
):
    """While a C-MOVE waits for a study, a sender that is not that PACS, or a file of another
    patient, lands in quarantine: never counted, never served."""
    gateway = wired_gateway(orthanc_running, allowed_calling_aets=[MODALITY_AET])
    scp = gateway.node.scp
    study = demo_catalog.study(PLAIN_STUDY)
    planted = _planted(study.files[0])
    genuine = dcmread(study.files[1])
    wrong_patient = dcmread(study.files[2])
    wrong_patient.PatientID = "SOMEONE-ELSE"
    expected = Expected(study.study_uid, orthanc_running.ae_title, study.patient_id)
    with scp.expecting(expected):
        assert _send(gateway_scp_port, MODALITY_AET, [planted], ATTACKER) == [0x0000]
        statuses = _send(gateway_scp_port, orthanc_running.ae_title, [genuine, wrong_patient], HOST)
        assert statuses == [0x0000, 0x0000]

    store = gateway.node.store
    held = store.held_files("quarantine")
    assert len(held) == 2
    assert {dcmread(p).PatientID for p in held} == {"ATTACKER-1", "SOMEONE-ELSE"}
    assert not _stored(gateway, study, str(planted.SOPInstanceUID)).exists()
    assert not _stored(gateway, study, str(wrong_patient.SOPInstanceUID)).exists()
    assert _stored(gateway, study, str(genuine.SOPInstanceUID)).exists()
    notes = [p.with_suffix(".json").read_text() for p in held]
    assert any(ATTACKER in n and MODALITY_AET in n for n in notes)


def test_a_correction_on_the_pacs_under_the_same_uids_is_fetched_again(
    wired_gateway, orthanc_factory, demo_catalog, gateway_scp_port, gateway_modality
):
    orthanc = orthanc_factory(
        modalities={GATEWAY_MODALITY: gateway_modality},
        config_overrides={"OverwriteInstances": True},
    )
    study = demo_catalog.study(PLAIN_STUDY)
    orthanc.upload(study.files)
    gateway = wired_gateway(orthanc)
    assert _fetch(gateway, study).state == "succeeded"

    corrected_dir = Path(gateway.settings.data_dir) / "corrected"
    corrected_dir.mkdir()
    corrected = []
    for number, path in enumerate(study.files):
        ds = dcmread(path)
        ds.PatientName = "Corrected^Name"
        out = corrected_dir / f"{number}.dcm"
        ds.save_as(out, enforce_file_format=True)
        corrected.append(out)
    orthanc.upload(corrected)

    again = _fetch(gateway, study)

    assert again.state == "succeeded", again.message
    for path in study.files:
        sop = str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)
        assert str(dcmread(_stored(gateway, study, sop)).PatientName) == "Corrected^Name"
    assert len(gateway.node.store.held_files("replaced")) == study.instance_count
    changes = [
        e.after["change"]
        for e in gateway.audit.list(subject=study_subject(study.study_uid))
        if e.action == AuditAction.STUDY_REPLACED
    ]
    assert changes == ["replaced by the PACS's copy: PatientName changed"] * study.instance_count


def test_a_flood_leaves_room_for_the_pacs_and_idle_associations_are_cut(
    wired_gateway, orthanc_running, demo_catalog, gateway_scp_port
):
    gateway = wired_gateway(
        orthanc_running,
        allowed_calling_aets=[MODALITY_AET],
        dicom_max_associations=6,
        dicom_max_associations_per_host=3,
        dicom_reserved_for_pacs=2,
        dicom_idle_timeout=4.0,
    )
    scp = gateway.node.scp
    held = [_associate(gateway_scp_port, MODALITY_AET, ATTACKER) for _ in range(3)]
    assert all(a.is_established for a in held)
    # More connections from the same address, silent or not, are closed at once.
    silent = []
    for _ in range(20):
        sock = socket.socket()
        sock.bind((ATTACKER, 0))
        sock.connect((HOST, gateway_scp_port))
        silent.append(sock)
    try:
        assert not _associate(gateway_scp_port, MODALITY_AET, ATTACKER).is_established
        assert wait_until(lambda: scp.refused_connections >= 21, 10)
        # A second address gets what is left outside the PACS's reserved room: one.
        others = [_associate(gateway_scp_port, MODALITY_AET, "127.0.0.3") for _ in range(3)]
        assert [a.is_established for a in others] == [True, False, False]
        held += others[:1]

        done = _fetch(gateway, demo_catalog.study(PLAIN_STUDY))
        assert done.state == "succeeded", done.message

        # Idle associations are cut after dicom_idle_timeout, their room given back.
        assert wait_until(lambda: not any(a.is_established for a in held), 15)
        again = _associate(gateway_scp_port, MODALITY_AET, ATTACKER)
        assert again.is_established
        again.release()
    finally:
        for sock in silent:
            sock.close()


def test_a_differing_push_of_a_stored_image_is_held_back_and_shown_to_staff(
    wired_gateway, orthanc_running, demo_catalog, gateway_scp_port
):
    gateway = wired_gateway(orthanc_running, allowed_calling_aets=[MODALITY_AET])
    study = demo_catalog.study(PLAIN_STUDY)
    assert _fetch(gateway, study).state == "succeeded"
    planted = _planted(study.files[0])
    target = _stored(gateway, study, str(planted.SOPInstanceUID))
    before = target.read_bytes()

    assert _send(gateway_scp_port, MODALITY_AET, [planted], ATTACKER) == [0x0000]
    assert gateway.pushes.wait_idle(30)

    assert target.read_bytes() == before  # the PACS's copy is still the one served
    (held,) = gateway.node.store.held_files("quarantine")
    assert dcmread(held).PatientID == "ATTACKER-1"
    client = TestClient(create_app(gateway), follow_redirects=False)  # started already
    _, key = client.app.state.keys.create("front-desk", "staff")
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/ui/login").text)[1]
    client.post("/ui/login", data={"csrf_token": token, "api_key": key})
    page = unescape(client.get("/ui/review").text)
    section = page[page.index("Held back: images that were not the PACS's own") :]
    assert MODALITY_AET in section and ATTACKER in section
    assert study.study_uid in section
    assert "pushed; differs from the stored copy" in section
    assert "ATTACKER-1" not in page and "Planted" not in page  # the file's own data stays out
