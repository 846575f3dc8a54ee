"""DICOMweb over the store, through the app: QIDO filters, WADO bodies and metadata, errors,
and the key requirement on every new route."""

from __future__ import annotations

import io
import re

import demo_studies
import pytest
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset

KEYS = ("muller-io-2021", "muller-px-2023", "lukasiewicz-cr-2020", "dubois-ext-mr-2024")
MULLER = demo_studies.LATIN1_PATIENT_ID


@pytest.fixture
def web(make_client, small_catalog, file_study):
    client, gateway, _ = make_client()
    for key in KEYS:
        file_study(gateway, small_catalog.study(key))
    return client


def uids(client, **params) -> list[str]:
    response = client.get("/dicomweb/studies", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/dicom+json"
    return [d["0020000D"]["Value"][0] for d in response.json()]


def test_qido_studies_filters_and_pages(web, small_catalog):
    study = {k: small_catalog.study(k).study_uid for k in KEYS}
    assert set(uids(web)) == set(study.values())
    assert set(uids(web, PatientID=MULLER)) == {study["muller-io-2021"], study["muller-px-2023"]}
    assert uids(web, StudyDate="20230202") == [study["muller-px-2023"]]
    assert set(uids(web, StudyDate="20210101-20231231")) == {
        study["muller-io-2021"],
        study["muller-px-2023"],
    }
    assert uids(web, StudyDate="-20201231") == [study["lukasiewicz-cr-2020"]]
    assert uids(web, StudyDate="20240101-") == [study["dubois-ext-mr-2024"]]
    assert set(uids(web, ModalitiesInStudy="CR,PX")) == {
        study["lukasiewicz-cr-2020"],
        study["muller-px-2023"],
    }
    assert uids(web, ModalitiesInStudy="C") == []
    pages = [uids(web, limit=3, offset=0), uids(web, limit=3, offset=3)]
    assert [len(p) for p in pages] == [3, 1] and {uid for page in pages for uid in page} == set(
        study.values()
    )
    uid = study["muller-io-2021"]
    assert uids(web, StudyInstanceUID=f"{uid},1.2.3") == [uid]


def test_qido_study_result_has_header_and_index_attributes(web, small_catalog):
    demo = small_catalog.study("dubois-ext-mr-2024")
    (result,) = web.get("/dicomweb/studies", params={"StudyInstanceUID": demo.study_uid}).json()
    ds = Dataset.from_json(result)
    assert ds.PatientID == demo.patient_id
    assert str(ds.PatientName) == small_catalog.patient(demo.patient_id).name
    assert ds.StudyDescription == demo.description and ds.AccessionNumber == demo.accession
    assert ds.NumberOfStudyRelatedSeries == 3
    assert ds.NumberOfStudyRelatedInstances == demo.instance_count
    assert ds.RetrieveURL.endswith(f"/dicomweb/studies/{demo.study_uid}")


@pytest.mark.parametrize("params", [{"StudyDate": "2021"}, {"ModalitiesInStudy": "C T"}])
def test_qido_bad_filter_is_a_400_problem(web, params):
    response = web.get("/dicomweb/studies", params=params)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


def test_qido_series_and_instances(web, small_catalog):
    demo = small_catalog.study("dubois-ext-mr-2024")
    series = web.get(f"/dicomweb/studies/{demo.study_uid}/series").json()
    found = {d["0020000E"]["Value"][0]: Dataset.from_json(d) for d in series}
    assert {uid: (ds.Modality, ds.NumberOfSeriesRelatedInstances) for uid, ds in found.items()} == {
        s.series_uid: ("MR", len(s.instances)) for s in demo.series
    }
    target = demo.series[1]
    listed = web.get(f"/dicomweb/studies/{demo.study_uid}/series/{target.series_uid}/instances")
    instances = [Dataset.from_json(d) for d in listed.json()]
    assert {ds.SOPInstanceUID for ds in instances} == set(target.sop_instance_uids)
    assert {ds.AvailableTransferSyntaxUID for ds in instances} == {target.transfer_syntax_uid}


def test_wado_instance_is_the_stored_file_and_metadata_has_no_pixels(web, small_catalog):
    demo = small_catalog.study("muller-io-2021")
    series, item = demo.series[0], demo.series[0].instances[0]
    base = f"/dicomweb/studies/{demo.study_uid}/series/{series.series_uid}/instances/"
    response = web.get(base + item.sop_instance_uid)
    assert response.status_code == 200
    content_type = response.headers["content-type"]
    assert content_type.startswith('multipart/related; type="application/dicom"; boundary=')
    boundary = re.search(r"boundary=(\S+)", content_type)[1]
    parts = response.content.split(f"--{boundary}".encode())
    assert parts[0] == b"" and parts[-1] == b"--\r\n" and len(parts) == 3
    head, _, body = parts[1].partition(b"\r\n\r\n")
    assert head == b"\r\nContent-Type: application/dicom"
    assert body.removesuffix(b"\r\n") == item.path.read_bytes()

    (meta,) = web.get(base + item.sop_instance_uid + "/metadata").json()
    assert "7FE00010" not in meta
    ds = Dataset.from_json(meta)
    assert ds.SOPInstanceUID == item.sop_instance_uid and ds.Rows > 0
    study_meta = web.get(f"/dicomweb/studies/{demo.study_uid}/metadata").json()
    assert len(study_meta) == demo.instance_count


def test_wado_rendered_png_and_jpeg(web, small_catalog):
    demo = small_catalog.study("lukasiewicz-cr-2020")
    series, item = demo.series[0], demo.series[0].instances[0]
    url = (
        f"/dicomweb/studies/{demo.study_uid}/series/{series.series_uid}"
        f"/instances/{item.sop_instance_uid}/rendered"
    )
    header = dcmread(item.path, stop_before_pixels=True)
    for accept, fmt in (("image/png", "PNG"), ("image/jpeg", "JPEG"), ("*/*", "PNG")):
        response = web.get(url, headers={"Accept": accept})
        assert response.status_code == 200
        image = Image.open(io.BytesIO(response.content))
        assert image.format == fmt and image.size == (header.Columns, header.Rows)


def test_unknown_uids_are_404_and_invalid_ones_422(web, small_catalog):
    demo = small_catalog.study("muller-io-2021")
    series = demo.series[0].series_uid
    for url in (
        "/dicomweb/studies/1.2.3",
        "/dicomweb/studies/1.2.3/series",
        "/dicomweb/studies/1.2.3/metadata",
        f"/dicomweb/studies/{demo.study_uid}/series/1.2.3",
        f"/dicomweb/studies/{demo.study_uid}/series/1.2.3/instances",
        f"/dicomweb/studies/{demo.study_uid}/series/{series}/instances/1.2.3",
        f"/dicomweb/studies/{demo.study_uid}/series/{series}/instances/1.2.3/rendered",
    ):
        response = web.get(url)
        assert response.status_code == 404, url
        assert response.headers["content-type"] == "application/problem+json"
    for url in ("/dicomweb/studies/1.2.x", f"/dicomweb/studies/{demo.study_uid}/series/..."):
        assert web.get(url).status_code == 422, url


def test_every_new_route_needs_a_key(web):
    paths = [
        p for p in web.app.openapi()["paths"] if p.startswith("/dicomweb") or p.endswith(".png")
    ]
    assert len(paths) == 13
    for path in paths:
        url = re.sub(r"{\w+}", "1.2.3", path)
        response = web.get(url, headers={"Authorization": ""})
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
