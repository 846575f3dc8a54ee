"""Every page as the people who use it see it, on a real `serve`, the real Orthanc and an R4
practice database: a clinician's fetch by R4 patient that needs review, a fetch that ends with
studies, the staff review queue, one item, the audit trail, the dashboard and the fallback
procedure. Each page is saved as a screenshot under test-artifacts/pages/tour-*.png."""

from __future__ import annotations

import re

import demo_practice
import demo_studies
from pages_testkit import practice, screenshot
from playwright.sync_api import expect

SAME_PERSON_R4_ID = demo_practice.r4_patient_id(demo_studies.SAME_PERSON_IDS[0])  # 1003
FETCH_TIMEOUT_MS = 120_000


def test_tour_of_every_page(browser, page, serve_pages, orthanc_running, tmp_path):
    served = serve_pages(orthanc_running, **practice(tmp_path))
    served.login(page, "clinician", "/ui/")
    screenshot(page, "tour-dashboard")
    page.goto(served.url + "/ui/fetch")
    screenshot(page, "tour-fetch-form")

    # A fetch by R4 patient whose studies the PACS files under an outside id: review.
    page.get_by_label("Patient id in R4").check()
    page.get_by_label("Patient id", exact=True).fill(str(SAME_PERSON_R4_ID))
    page.get_by_label("Modalities").fill("MR, CT")
    page.get_by_role("button", name="Fetch studies").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "A staff member needs to check this fetch", timeout=FETCH_TIMEOUT_MS
    )
    screenshot(page, "tour-job-needs-review")

    # A fetch by PACS id with an accented (Latin-1) name: ends with its studies.
    page.goto(served.url + "/ui/fetch")
    page.get_by_label("Patient id on the PACS").check()
    page.get_by_label("Patient id", exact=True).fill(demo_studies.LATIN1_PATIENT_ID)
    page.get_by_role("button", name="Fetch studies").click()
    expect(page).to_have_url(re.compile(r"/ui/jobs/[0-9a-f-]{36}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Studies fetched", timeout=FETCH_TIMEOUT_MS
    )
    page.wait_for_function(
        "() => [...document.querySelectorAll('.thumbs img')]"
        ".every((img) => img.complete && img.naturalWidth > 0)",
        timeout=FETCH_TIMEOUT_MS,
    )
    screenshot(page, "tour-job-succeeded")
    page.goto(served.url + "/ui/jobs")
    screenshot(page, "tour-jobs")

    staff = browser.new_context(viewport={"width": 768, "height": 1024})
    staff.set_default_timeout(20_000)
    desk = staff.new_page()
    try:
        served.login(desk, "staff", "/ui/review")
        screenshot(desk, "tour-review-queue")
        desk.locator("article.review-item h2 a").first.click()
        expect(desk).to_have_url(re.compile(r"/ui/review/[0-9]+$"))
        screenshot(desk, "tour-review-item")
        desk.goto(served.url + "/ui/audit")
        screenshot(desk, "tour-audit")
        desk.goto(served.url + "/ui/fallback")
        screenshot(desk, "tour-fallback")
    finally:
        staff.close()
