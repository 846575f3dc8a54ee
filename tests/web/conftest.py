"""Browser tests of the pages: a real `pacs-gateway serve` (on the real Orthanc where a test
fetches) driven by Debian's Chromium through Playwright, at tablet width."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from orthanc_server import free_port
from pages_testkit import VIEWERS, PagesGateway
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from gateway.core.keys import KeyStore
from gateway.core.settings import PacsSettings, Settings
from gateway.service import Gateway

CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright downloads no browser here
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TABLET = {"width": 768, "height": 1024}
TIMEOUT_MS = 20_000


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport=TABLET, locale="en-GB", timezone_id="Europe/London")
    ctx.set_default_timeout(TIMEOUT_MS)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def serve_pages(tmp_path, gateway_scp_port, monkeypatch) -> Iterator[Callable[..., PagesGateway]]:
    """`serve_pages(orthanc=None, *, roles=..., **settings)`: a `serve` on the real Orthanc,
    or (None) on a PACS port nothing listens on; with the VIEWERS links and a key per role."""
    # ServeProcess writes scalar settings only: the viewer links go in through the
    # environment, which `serve` reads over its TOML file.
    monkeypatch.setenv(
        "PACS_GATEWAY_VIEWER_LINKS", json.dumps([link.model_dump() for link in VIEWERS])
    )
    started: list[PagesGateway] = []

    def start(
        orthanc: Any = None, *, roles: tuple[str, ...] = ("clinician", "staff"), **overrides: Any
    ) -> PagesGateway:
        from serve_process import ServeProcess

        number = len(started)
        settings = _settings(tmp_path / f"gw{number}", gateway_scp_port, orthanc, overrides)
        gateway = Gateway(settings)
        store = KeyStore(gateway.engine)
        keys = {role: store.create(f"pages-{role}", role)[1] for role in roles}
        served = PagesGateway(ServeProcess(settings, tmp_path, f"serve{number}"), gateway, keys)
        started.append(served)
        served.process.start()
        return served

    yield start
    for served in started:
        served.process.kill()


def _settings(data_dir: Path, scp_port: int, orthanc: Any, overrides: dict[str, Any]) -> Settings:
    from gateway_testkit import gateway_settings

    values: dict[str, Any] = {"workers": 1, **overrides}
    if orthanc is None:
        values["pacs"] = [
            PacsSettings(
                name="test-orthanc",
                ae_title="NOBODY",
                host="127.0.0.1",
                port=free_port(),  # nothing listens here
                connect_timeout=1.0,
            )
        ]
        orthanc = _Nowhere()
    return gateway_settings(data_dir, scp_port, orthanc, **values)


class _Nowhere:
    """What gateway_settings reads of an Orthanc; its PACS entry is replaced above."""

    ae_title = "NOBODY"
    dicom_port = 1
