"""Viewer links from settings on study responses."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.core.settings import Settings
from gateway.core.viewer_links import ViewerLink

OHIF = {
    "name": "OHIF",
    "url_template": "https://viewer.example/viewer?StudyInstanceUIDs={study_uid}",
}
WEASIS = {
    "name": "Weasis",
    "url_template": 'weasis://?%24dicom%3Aget+-w+"https://gw.example/wado?s={study_uid}"+{-x}',
}


def test_links_render_from_settings_on_study_responses(make_client, small_catalog, file_study):
    client, gateway, _ = make_client(viewer_links=[OHIF, WEASIS])
    study = small_catalog.study("muller-px-2023")
    file_study(gateway, study)
    uid = study.study_uid
    expected = [
        {"name": "OHIF", "url": f"https://viewer.example/viewer?StudyInstanceUIDs={uid}"},
        {
            "name": "Weasis",
            "url": f'weasis://?%24dicom%3Aget+-w+"https://gw.example/wado?s={uid}"+{{-x}}',
        },
    ]
    assert client.get(f"/api/v1/studies/{uid}").json()["links"]["viewers"] == expected
    listed = client.get(f"/api/v1/patients/{study.patient_id}/studies").json()["studies"]
    assert [s["links"]["viewers"] for s in listed] == [expected]


def test_no_viewers_configured_gives_an_empty_list(make_client, small_catalog, file_study):
    client, gateway, _ = make_client()
    study = small_catalog.study("muller-px-2023")
    file_study(gateway, study)
    assert client.get(f"/api/v1/studies/{study.study_uid}").json()["links"]["viewers"] == []


def test_substituted_values_are_url_encoded():
    link = ViewerLink(name="x", url_template="https://v.example/{study_uid}/view")
    assert link.url_for("1.2/../3&a=b") == "https://v.example/1.2%2F..%2F3%26a%3Db/view"


@pytest.mark.parametrize("placeholder", ["{pacs_patient_id}", "{patient_name}", "{study}"])
def test_unknown_placeholders_are_refused_at_startup(placeholder):
    with pytest.raises(ValidationError, match="study_uid"):
        Settings(viewer_links=[{"name": "x", "url_template": f"https://v.example/{placeholder}"}])


def test_viewer_links_from_the_environment(monkeypatch):
    monkeypatch.setenv(
        "PACS_GATEWAY_VIEWER_LINKS",
        f'[{{"name": "OHIF", "url_template": "{OHIF["url_template"]}"}}]',
    )
    assert Settings().viewer_links == [ViewerLink(**OHIF)]
