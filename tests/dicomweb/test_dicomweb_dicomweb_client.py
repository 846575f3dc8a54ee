"""A real DICOMweb client against `pacs-gateway serve`, after a real fetch from Orthanc."""

from __future__ import annotations

import io

import demo_studies
import httpx
import pytest
from dicom_bytes import dataset_body
from dicomweb_client.api import DICOMwebClient
from gateway_testkit import gateway_settings
from orthanc_server import wait_until
from PIL import Image
from serve_process import ServeProcess

from gateway.core.database import open_database
from gateway.core.keys import KeyStore

PATIENT_ID = demo_studies.SAME_PERSON_IDS[0]  # two small studies: PX and IO
AS_STORED = (("application/dicom", "*"),)  # the gateway never transcodes


@pytest.fixture
def served(tmp_path, gateway_scp_port, orthanc_running):
    settings = gateway_settings(tmp_path / "gw", gateway_scp_port, orthanc_running)
    _, key = KeyStore(open_database(settings.database_url)).create("viewer", "clinician")
    serve = ServeProcess(settings, tmp_path)
    serve.start()
    try:
        yield serve, key, settings
    finally:
        # A graceful stop is tested in tests/gateway; here only the process must end.
        serve.stop()


def fetch(base: str, key: str) -> None:
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    location = api.post("/api/v1/fetches", json={"pacs_patient_id": PATIENT_ID}).headers["Location"]
    assert wait_until(lambda: not api.get(location).json()["active"], 120)
    assert api.get(location).json()["state"] == "succeeded"


def test_dicomweb_client_finds_and_retrieves_what_was_fetched(served, demo_catalog):
    serve, key, settings = served
    base = f"http://127.0.0.1:{serve.http_port}"
    fetch(base, key)
    client = DICOMwebClient(f"{base}/dicomweb", headers={"Authorization": f"Bearer {key}"})
    demo = {s.study_uid: s for s in demo_catalog.studies_for(PATIENT_ID)}

    found = client.search_for_studies(search_filters={"PatientID": PATIENT_ID})
    assert {d["0020000D"]["Value"][0] for d in found} == set(demo)
    store = settings.studies_dir
    retrieved = 0
    for study_uid, study in demo.items():
        series = client.search_for_series(study_uid)
        assert {d["0020000E"]["Value"][0] for d in series} == {s.series_uid for s in study.series}
        for s in study.series:
            listed = client.search_for_instances(study_uid, s.series_uid)
            assert {d["00080018"]["Value"][0] for d in listed} == set(s.sop_instance_uids)
            for item in s.instances:
                ds = client.retrieve_instance(
                    study_uid, s.series_uid, item.sop_instance_uid, media_types=AS_STORED
                )
                sent = ds.buffer.getvalue()
                stored = store / study_uid / s.series_uid / f"{item.sop_instance_uid}.dcm"
                assert sent == stored.read_bytes()
                # And what Orthanc holds, without each node's own file meta header.
                assert dataset_body(sent) == dataset_body(item.path.read_bytes())
                retrieved += 1
        whole = client.retrieve_study(study_uid, media_types=AS_STORED)
        assert {d.SOPInstanceUID for d in whole} == set(study.sop_instance_uids)
    assert retrieved == sum(s.instance_count for s in demo.values())

    study = next(iter(demo.values()))
    item = study.series[0].instances[0]
    png = client.retrieve_instance_rendered(
        study.study_uid,
        study.series[0].series_uid,
        item.sop_instance_uid,
        media_types=("image/png",),
    )
    assert Image.open(io.BytesIO(png)).format == "PNG"
    metadata = client.retrieve_study_metadata(study.study_uid)
    assert len(metadata) == study.instance_count and all("7FE00010" not in m for m in metadata)

    anonymous = DICOMwebClient(f"{base}/dicomweb")
    with pytest.raises(Exception, match="401"):
        anonymous.search_for_studies()
