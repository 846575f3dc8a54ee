"""The clinician's job page while a real fetch runs, when the PACS cannot be reached, and the
forms' CSRF protection."""

from __future__ import annotations

import itertools
import re

import demo_studies
from pages_testkit import assert_accessible, screenshot
from playwright.sync_api import Page, expect

CBCT_PATIENT = demo_studies.SAME_PERSON_IDS[1]  # the 240-slice CBCT (and an MR)
FETCH_TIMEOUT_MS = 120_000

# Installed before the job page's own script: records every images count the page shows
# while the job is not done (a MutationObserver sees each update, however brief).
_RECORD_PROGRESS = """
window.__imagesSeen = [];
document.addEventListener("DOMContentLoaded", () => {
  const panel = document.getElementById("job-panel");
  if (!panel) return;
  const record = () => {
    const count = panel.querySelector('[data-field="images_received"]');
    if (!count || panel.dataset.state === "succeeded") return;
    const value = Number(count.textContent);
    const seen = window.__imagesSeen;
    if (seen[seen.length - 1] !== value) seen.push(value);
  };
  record();
  new MutationObserver(record).observe(panel, {
    subtree: true, childList: true, characterData: true, attributes: true,
  });
});
"""
_IMAGES_LOADED = """
() => {
  const images = [...document.querySelectorAll(".thumbs img")];
  return images.length > 0 && images.every((img) => img.complete && img.naturalWidth > 0);
}
"""


def request_fetch(page: Page, patient_id: str, modalities: str = "") -> None:
    page.get_by_label("Patient id on the PACS").check()
    page.get_by_label("Patient id", exact=True).fill(patient_id)
    page.get_by_label("Modalities").fill(modalities)
    page.get_by_role("button", name="Fetch studies").click()
    expect(page).to_have_url(re.compile(r"/ui/jobs/[0-9a-f-]{36}$"))


def test_the_job_page_follows_a_real_fetch_and_ends_with_the_studies(
    page, serve_pages, orthanc_running, demo_catalog
):
    ct = demo_catalog.study("dubois-ext-cbct-2023")
    served = serve_pages(orthanc_running)
    served.login(page, "clinician", "/ui/fetch")
    assert_accessible(page)
    page.add_init_script(_RECORD_PROGRESS)
    request_fetch(page, CBCT_PATIENT, "CT")
    page.evaluate("window.__samePage = true")  # gone if the page reloads

    expect(page.get_by_role("heading", level=1)).to_have_text("Fetching study, please wait")
    # Mid-fetch: some images in, not all.
    page.wait_for_function(
        "total => window.__imagesSeen.some((n) => n > 0 && n < total)",
        arg=ct.instance_count,
        timeout=FETCH_TIMEOUT_MS,
    )
    screenshot(page, "job-progress")
    page.wait_for_function(
        "() => document.getElementById('job-panel').dataset.state === 'succeeded'",
        timeout=FETCH_TIMEOUT_MS,
    )

    seen = page.evaluate("window.__imagesSeen")
    assert any(0 < n < ct.instance_count for n in seen), seen
    assert any(later > earlier for earlier, later in itertools.pairwise(seen)), seen
    assert page.evaluate("window.__samePage") is True  # updated in place, never reloaded
    print("images counts shown while fetching:", seen)
    expect(page.locator("#job-announce")).to_contain_text("Studies fetched")

    expect(page.get_by_role("heading", level=1)).to_have_text("Studies fetched")
    card = page.locator(".study").filter(has_text="CBCT maxilla and mandible")
    expect(card).to_contain_text("18 Apr 2023")
    expect(card).to_contain_text("CT")
    expect(card.locator("[data-image-count]")).to_have_text(str(ct.instance_count))
    page.wait_for_function(_IMAGES_LOADED, timeout=FETCH_TIMEOUT_MS)
    ohif = card.get_by_role("link", name="OHIF")
    expect(ohif).to_have_attribute("href", re.compile(re.escape(ct.study_uid) + "$"))
    expect(card.get_by_role("link", name="Weasis")).to_have_attribute(
        "href", re.compile("^weasis://.*" + re.escape(ct.study_uid))
    )
    screenshot(page, "job-succeeded")
    assert_accessible(page)

    # The large preview behind the thumbnail, under the same session...
    preview = card.locator(".thumbs a").first.get_attribute("href")
    answer = page.request.get(served.url + preview)
    assert answer.status == 200 and answer.headers["content-type"] == "image/png"
    assert answer.body()[:8] == b"\x89PNG\r\n\x1a\n"
    # ...and nothing of it without one.
    stranger = page.context.browser.new_context()
    try:
        refused = stranger.request.get(served.url + preview, max_redirects=0)
        assert refused.status == 303 and "/ui/login" in refused.headers["location"]
    finally:
        stranger.close()


def test_when_the_pacs_cannot_be_reached_the_page_says_so_and_links_the_fallback(page, serve_pages):
    served = serve_pages(None, retry_initial_delay=120.0, retry_max_delay=120.0)
    served.login(page, "clinician", "/ui/fetch")
    request_fetch(page, "R4-1001")

    expect(page.get_by_role("heading", level=1)).to_have_text("The PACS cannot be reached")
    sentence = page.locator(".sentence")
    expect(sentence).to_contain_text("cannot reach the PACS “test-orthanc” at the moment")
    # A time, said the way every page says it; no countdown next to it.
    expect(sentence).to_contain_text(
        re.compile(r"tries again by itself at \d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2};")
    )
    expect(page.get_by_text("in about")).to_have_count(0)
    fallback = page.get_by_role("link", name=re.compile("fallback procedure"))
    expect(fallback).to_be_visible()
    screenshot(page, "job-waiting-retry")
    assert_accessible(page)

    fallback.click()
    expect(page).to_have_url(served.url + "/ui/fallback")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "When images cannot be fetched: what clinical staff do"
    )
    expect(page.get_by_role("heading", name="Who to call")).to_be_visible()
    expect(page.locator("table").first).to_be_visible()
    expect(
        page.get_by_role("table", name="Whom to call, from the gateway's settings")
    ).to_be_visible()
    screenshot(page, "fallback")


def test_a_form_posted_without_its_csrf_token_is_refused(page, serve_pages):
    served = serve_pages()
    served.login(page, "clinician", "/ui/fetch")

    # Same browser, same session cookie: only the token is missing, or wrong.
    for token in (None, "not-the-token"):
        form = {"id_kind": "pacs", "patient_id": "R4-1001"}
        if token:
            form["csrf_token"] = token
        answer = page.request.post(served.url + "/ui/fetch", form=form, max_redirects=0)
        assert answer.status == 403
        assert "could not be accepted" in answer.text()
    assert served.gateway.jobs.list() == []  # nothing was submitted

    page.goto(served.url + "/ui/fetch")  # the page's own form still works
    request_fetch(page, "R4-1001")
    assert len(served.gateway.jobs.list()) == 1
