"""A look at a waiting study before staff decide: thumbnails of a pushed study from the files
received (staff only, and the study stays out of every patient's index and of the clinicians'
previews), and a plain sentence when the PACS cannot be asked about a study found by query.
Through TestClient on the files of the demo catalog; the browser flow with the real PACS's
answer is test_pages_words.py."""

from __future__ import annotations

import re
import shutil
from datetime import date

import pytest
from fastapi.testclient import TestClient
from pages_testkit import CLOSED_PACS, closed_pacs_settings

from gateway.app import create_app
from gateway.fetch.plan import found_by_name
from gateway.review import ReviewOrigin
from gateway.service import Gateway
from pacs.models import PacsPatient, PersonName, Study

PACS_NAME = CLOSED_PACS


@pytest.fixture
def gateway(tmp_path) -> Gateway:
    return Gateway(closed_pacs_settings(tmp_path))


@pytest.fixture
def client(gateway):
    with TestClient(create_app(gateway), follow_redirects=False) as c:
        yield c


def _queue(gateway: Gateway, demo_study, origin: ReviewOrigin):
    pacs = PacsPatient(
        "EXT-77812",
        PersonName.parse("Dubois^Jean-Pierre"),
        date(1975, 11, 5),
        "M",
        issuer_of_patient_id="NORTHSIDE-RADIOLOGY",
    )
    study = Study(
        demo_study.study_uid,
        pacs,
        description=demo_study.description,
        modalities=tuple(sorted(demo_study.modalities)),
        number_of_instances=demo_study.instance_count,
    )
    item, _ = gateway.review.add(
        origin=origin,
        pacs_name=PACS_NAME,
        patient=pacs,
        study=study,
        decision=found_by_name(gateway.patients.matcher().match(pacs)),
        details={},
    )
    return item


def _login(client: TestClient, key: str) -> None:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/ui/login").text)[1]
    assert client.post("/ui/login", data={"csrf_token": token, "api_key": key}).status_code == 303


def test_staff_see_a_pushed_study_before_deciding_and_nobody_else_does(
    gateway, client, demo_catalog
):
    mr = demo_catalog.study("dubois-ext-mr-2024")
    for series in mr.series:  # as the Storage SCP files a push
        for instance in series.instances:
            target = gateway.index.store_root / mr.study_uid / series.series_uid
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(instance.path, target / f"{instance.sop_instance_uid}.dcm")
    item = _queue(gateway, mr, ReviewOrigin.PUSH)
    keys = {r: client.app.state.keys.create(f"pages-{r}", r)[1] for r in ("staff", "clinician")}

    _login(client, keys["staff"])
    page = client.get(f"/ui/review/{item.id}").text
    assert "The images as they were sent" in page
    thumbs = re.findall(rf'src="(/ui/review/{item.id}/look/[0-9.]+\.png)"', page)
    assert len(thumbs) == len(mr.series)
    answer = client.get(thumbs[0])
    assert answer.status_code == 200 and answer.content[:8] == b"\x89PNG\r\n\x1a\n"

    # Out of every patient's index, and of the previews clinicians' pages serve.
    assert gateway.index.study(mr.study_uid) is None
    series_uid = thumbs[0].rsplit("/", 1)[1].removesuffix(".png")
    public = f"/ui/studies/{mr.study_uid}/series/{series_uid}/thumbnail.png"
    assert client.get(public).status_code == 404
    seen = [e for e in gateway.audit.list() if e.action == "view.preview"]
    assert [(e.actor, e.after["pacs_patient_id"]) for e in seen] == [("pages-staff", "EXT-77812")]

    client.cookies.clear()
    _login(client, keys["clinician"])
    assert client.get(thumbs[0]).status_code == 403


def test_a_pacs_that_cannot_be_asked_is_said_plainly(gateway, client, demo_catalog):
    item = _queue(gateway, demo_catalog.study("dubois-ext-cbct-2023"), ReviewOrigin.NAME_QUERY)
    _login(client, client.app.state.keys.create("pages-staff", "staff")[1])
    page = client.get(f"/ui/review/{item.id}").text
    assert "could not be asked about this study just now" in page
