"""The fallback procedure: one document (docs/fallback.md is a link to the package's copy, so
an installed wheel serves the same text), readable without logging in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from orthanc_server import free_port

from gateway.app import create_app
from gateway.core.settings import Settings
from gateway.service import Gateway
from gateway.web.fallback_page import FALLBACK_DOCUMENT

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(tmp_path):
    settings = Settings(data_dir=tmp_path / "var", dicom_port=free_port(), workers=0, pacs=[])
    with TestClient(create_app(Gateway(settings)), follow_redirects=False) as c:
        yield c


def test_docs_fallback_is_the_document_the_page_serves():
    docs = ROOT / "docs" / "fallback.md"
    assert docs.is_symlink() and not Path(docs.readlink()).is_absolute()
    assert docs.resolve() == FALLBACK_DOCUMENT.resolve()
    assert "*.md" in (ROOT / "pyproject.toml").read_text(encoding="utf-8")  # package data


def test_the_procedure_is_served_without_a_login_and_rendered(client):
    answer = client.get("/ui/fallback")
    assert answer.status_code == 200
    html = answer.text
    assert "<h1>When images cannot be fetched: what clinical staff do</h1>" in html
    assert "<h2>Who to call</h2>" in html and "<table>" in html
    assert "Log in" in html  # the menu of someone not logged in
    # The login page points there, for people who cannot get further.
    assert re.search(r'href="/ui/fallback"', client.get("/ui/login").text)


def test_the_apis_job_page_address_leads_to_the_job_page(client):
    answer = client.get("/jobs/0b6f4c1e-3c1e-4a51-9c1f-7f3c6a1e2d4b")
    assert answer.status_code == 307
    assert answer.headers["location"] == "/ui/jobs/0b6f4c1e-3c1e-4a51-9c1f-7f3c6a1e2d4b"
