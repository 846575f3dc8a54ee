"""Helpers of the page tests: the running gateway, logging in, screenshots, and checks of
accessibility that a browser can measure (contrast, labels, width)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

TESTS = Path(__file__).resolve().parents[1]
# tests/ has no packages: ServeProcess and gateway_testkit live in tests/gateway.
if str(TESTS / "gateway") not in sys.path:
    sys.path.insert(0, str(TESTS / "gateway"))

import demo_practice  # noqa: E402
from orthanc_server import free_port  # noqa: E402
from playwright.sync_api import Page, expect  # noqa: E402
from serve_process import ServeProcess  # noqa: E402

from gateway.core.settings import PacsSettings, Settings  # noqa: E402
from gateway.core.viewer_links import ViewerLink  # noqa: E402
from gateway.service import Gateway  # noqa: E402

ARTIFACTS = TESTS.parent / "test-artifacts" / "pages"
VIEWERS = [
    ViewerLink(
        name="OHIF", url_template="https://ohif.example/viewer?StudyInstanceUIDs={study_uid}"
    ),
    ViewerLink(name="Weasis", url_template="weasis://?$dicom:rs --study={study_uid}"),
]


CLOSED_PACS = "main-pacs"


def practice(tmp_path: Path) -> dict[str, object]:
    """Settings of a gateway next to the demo R4 practice: matching on, the "R4-" id rule."""
    return {
        "r4_database_url": demo_practice.write_demo_practice(tmp_path / "r4.db"),
        "pacs_id_rule_prefix": demo_practice.ID_PREFIX,
        "match_by_demographics": True,
    }


def closed_pacs_settings(tmp_path: Path) -> Settings:
    """A gateway of the demo practice whose one PACS (CLOSED_PACS) nobody listens for, and
    no worker: what it queues stays queued."""
    return Settings(
        data_dir=tmp_path / "var",
        dicom_port=free_port(),
        dicom_bind="127.0.0.1",
        workers=0,
        r4_database_url=demo_practice.write_demo_practice(tmp_path / "r4.db"),
        pacs_id_rule_prefix=demo_practice.ID_PREFIX,
        pacs=[
            PacsSettings(
                name=CLOSED_PACS,
                ae_title="NOBODY",
                host="127.0.0.1",
                port=free_port(),
                connect_timeout=0.5,
            )
        ],
    )


@dataclass
class PagesGateway:
    """A running `serve`, a Gateway object on the same database (not started: only its stores
    are used), and one API key per role."""

    process: ServeProcess
    gateway: Gateway
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.process.http_port}"

    def login(self, page: Page, role: str = "clinician", path: str = "/ui/") -> None:
        """Open `path`, get sent to the login page, log in, arrive at `path`."""
        page.goto(self.url + path)
        expect(page).to_have_url(self.url + login_path(path))
        page.get_by_label("API key").fill(self.keys[role])
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(self.url + path)


def login_path(path: str) -> str:
    if path in ("/ui/", "/ui"):
        return "/ui/login"
    return "/ui/login?" + urlencode({"next": path})


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# -- accessibility a browser can measure -------------------------------------------------

_CONTRAST_JS = """
() => {
  const rgba = (text) => {
    const m = text.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return [0, 0, 0, 0];
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const luminance = ([r, g, b]) => {
    const c = [r, g, b].map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c[3] > 0.5) return c;
    }
    return [255, 255, 255, 1];
  };
  const failures = [];
  let checked = 0;
  for (const el of document.body.querySelectorAll("*")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    const shown = style.visibility !== "hidden" && style.display !== "none";
    if (!shown || box.width < 2 || box.height < 2) continue;
    checked += 1;
    const fg = luminance(rgba(style.color));
    const bg = luminance(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    const what = `${el.tagName} "${el.textContent.trim().slice(0, 40)}"`;
    if (ratio < 4.5) failures.push(`${what}: ${ratio.toFixed(2)}`);
  }
  return { checked, failures };
}
"""

_UNLABELLED_JS = """
() => [...document.querySelectorAll("input, select, textarea")]
  .filter((el) => el.type !== "hidden")
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label")
                  && !el.getAttribute("aria-labelledby"))
  .map((el) => el.name || el.id || el.tagName)
"""


def assert_accessible(page: Page) -> None:
    """lang set; every visible text at 4.5:1 contrast or more; every input labelled; nothing
    wider than the (tablet) viewport; keyboard focus drawn."""
    assert page.evaluate("document.documentElement.lang") == "en"
    contrast = page.evaluate(_CONTRAST_JS)
    assert contrast["checked"] > 0
    assert contrast["failures"] == [], contrast["failures"]
    assert page.evaluate(_UNLABELLED_JS) == []
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page is {width[0]} px wide in a {width[1]} px window"
    page.keyboard.press("Tab")
    outline = page.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement);"
        " return [document.activeElement.tagName, s.outlineStyle, s.outlineWidth]; })()"
    )
    assert outline[1] != "none" and outline[2] != "0px", outline
