"""The Storage SCP against real senders: pynetdicom and DCMTK's storescu."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from dicom_bytes import dataset_body
from pydicom import dcmread
from pydicom.filereader import read_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, _config

from pacs.store import StoredInstance

STORESCU = "/usr/bin/storescu"  # DCMTK's, not pynetdicom's script of the same name


def _send(port: int, files: list[Path], calling_aet: str = "TESTSCU") -> list[int]:
    """C-STORE files as they are on disk, bytes untouched (chunked send)."""
    ae = AE(ae_title=calling_aet)
    for path in files:
        meta = read_file_meta_info(path)
        ae.add_requested_context(meta.MediaStorageSOPClassUID, [meta.TransferSyntaxUID])
    assoc = ae.associate("127.0.0.1", port, ae_title="PACSGATEWAY")
    assert assoc.is_established
    try:
        return [int(assoc.send_c_store(path).Status) for path in files]
    finally:
        assoc.release()


@pytest.fixture
def chunked_send(monkeypatch):
    # Sends each file's dataset bytes as they are, so broken files reach the SCP broken.
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)


@pytest.fixture
def good_file(demo_catalog) -> Path:
    return demo_catalog.study("muller-io-2021").files[0]


def _stored_files(store) -> list[Path]:
    return [p for p in store.root.rglob("*.dcm") if ".incoming" not in p.parts]


def test_stores_a_pushed_instance_under_its_uids(scp, store, good_file, chunked_send):
    seen: list[StoredInstance] = []
    scp.add_listener(seen.append)

    assert _send(scp.port, [good_file]) == [0x0000]

    ds = dcmread(good_file, stop_before_pixels=True)
    target = store.path_for(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    assert dataset_body(target.read_bytes()) == dataset_body(good_file.read_bytes())
    assert [(s.path, s.new, s.calling_ae_title) for s in seen] == [(target, True, "TESTSCU")]


def test_a_resent_instance_leaves_one_file_and_counts_once(scp, store, good_file, chunked_send):
    seen: list[StoredInstance] = []
    scp.add_listener(seen.append)

    assert _send(scp.port, [good_file, good_file]) == [0x0000, 0x0000]

    assert len(_stored_files(store)) == 1
    assert [s.new for s in seen] == [True, False]


def test_unknown_calling_ae_is_rejected(scp, store, good_file):
    ae = AE(ae_title="STRANGER")
    ae.add_requested_context(dcmread(good_file).SOPClassUID, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", scp.port, ae_title="PACSGATEWAY")

    assert assoc.is_rejected
    assert assoc.acceptor.primitive.reason_str == "Calling AE title not recognised"
    assert _stored_files(store) == []


def _truncated(source: Path, tmp_path: Path) -> Path:
    data = source.read_bytes()
    broken = tmp_path / "truncated.dcm"
    broken.write_bytes(data[: len(data) - 5000])
    return broken


def _garbage(source: Path, tmp_path: Path) -> Path:
    data = source.read_bytes()
    header = len(data) - len(dataset_body(data))
    broken = tmp_path / "garbage.dcm"
    broken.write_bytes(data[:header] + bytes(range(256)) * 40)
    return broken


def _traversal(source: Path, tmp_path: Path) -> Path:
    ds = dcmread(source)
    ds.StudyInstanceUID = "../../../../tmp/escaped"
    broken = tmp_path / "traversal.dcm"
    ds.save_as(broken, enforce_file_format=True)
    return broken


@pytest.mark.parametrize("make_broken", [_truncated, _garbage, _traversal])
def test_malformed_data_is_refused_and_the_scp_keeps_serving(
    make_broken, scp, store, good_file, tmp_path, chunked_send
):
    broken = make_broken(good_file, tmp_path)

    statuses = _send(scp.port, [broken, good_file])

    assert statuses[0] == 0xC210
    assert statuses[1] == 0x0000
    assert len(_stored_files(store)) == 1
    assert not Path("/tmp/escaped").exists()
    assert list(store.incoming.iterdir()) == []


def test_dcmtk_storescu_can_push_to_the_gateway(scp, store, demo_catalog):
    files = demo_catalog.study("lukasiewicz-cr-2020").files
    command = [STORESCU, "-aet", "STORESCU", "-aec", "PACSGATEWAY", "127.0.0.1", str(scp.port)]
    sent = subprocess.run([*command, *map(str, files)], capture_output=True, text=True, timeout=60)
    assert sent.returncode == 0, sent.stderr

    stored = _stored_files(store)
    assert len(stored) == len(files)
    by_name = {p.name: p for p in stored}
    for source in files:
        sop = dcmread(source, stop_before_pixels=True).SOPInstanceUID
        assert dataset_body(by_name[f"{sop}.dcm"].read_bytes()) == dataset_body(source.read_bytes())


def test_echo_from_a_known_peer_is_answered(scp):
    ae = AE(ae_title="TESTSCU")
    ae.add_requested_context("1.2.840.10008.1.1", ImplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", scp.port, ae_title="PACSGATEWAY")
    try:
        assert assoc.send_c_echo().Status == 0x0000
    finally:
        assoc.release()
