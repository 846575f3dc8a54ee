"""The staff review pages against the real Orthanc and an R4 practice database: studies found
by name under an outside id wait in the queue; staff dismiss one with a reason and resolve the
other, which is then fetched and shown. Clinicians cannot open the queue."""

from __future__ import annotations

import re
from datetime import datetime

import demo_practice
import demo_studies
from pages_testkit import assert_accessible, practice, screenshot
from playwright.sync_api import expect

SAME_PERSON_R4_ID = demo_practice.r4_patient_id(demo_studies.SAME_PERSON_IDS[0])  # 1003
FETCH_TIMEOUT_MS = 120_000


def test_staff_resolve_a_queued_study_and_the_follow_up_fetch_shows_it(
    browser, page, serve_pages, orthanc_running, demo_catalog, tmp_path
):
    mr = demo_catalog.study("dubois-ext-mr-2024")
    cbct = demo_catalog.study("dubois-ext-cbct-2023")
    served = serve_pages(orthanc_running, **practice(tmp_path))

    # A clinician asks for the patient's MR and CT studies by R4 id. The PACS has them only
    # under the outside provider's id: found by name and birth date, they wait for staff.
    served.login(page, "clinician", "/ui/fetch")
    page.get_by_label("Patient id in R4").check()
    page.get_by_label("Patient id", exact=True).fill(str(SAME_PERSON_R4_ID))
    page.get_by_label("Modalities").fill("MR, CT")
    page.get_by_role("button", name="Fetch studies").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "A staff member needs to check this fetch", timeout=FETCH_TIMEOUT_MS
    )
    expect(page.locator(".sentence")).to_contain_text("2 studies await staff review")
    screenshot(page, "job-needs-review")
    page.goto(served.url + "/ui/review")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()

    staff = browser.new_context(viewport={"width": 768, "height": 1024})
    staff.set_default_timeout(20_000)
    desk = staff.new_page()
    try:
        served.login(desk, "staff", "/ui/review")
        expect(desk.get_by_text("2 items are open.")).to_be_visible()
        mr_item = desk.locator("article.review-item").filter(has_text="MR temporomandibular")
        cbct_item = desk.locator("article.review-item").filter(has_text="CBCT maxilla")
        for item in (mr_item, cbct_item):
            expect(item.locator(".pacs-side")).to_contain_text(demo_studies.SAME_PERSON_IDS[1])
            candidate = item.locator(".candidate").filter(has_text=str(SAME_PERSON_R4_ID))
            expect(candidate).to_contain_text("Dubois")
            expect(candidate.get_by_role("heading")).to_contain_text("Very alike")
            expect(candidate.locator(".points li").first).to_be_visible()
        screenshot(desk, "review-queue")
        assert_accessible(desk)

        # Dismissing needs a reason...
        cbct_item.get_by_role("button", name="Dismiss: do not fetch").click()
        expect(desk.get_by_role("alert")).to_contain_text("Give the reason for dismissing")
        desk.get_by_label("Reason for dismissing").fill("Outside CBCT already reported on paper")
        desk.get_by_role("button", name="Dismiss: do not fetch").click()
        expect(desk.get_by_role("status").first).to_contain_text("Dismissed")
        expect(desk.locator(".outcome")).to_contain_text("Outside CBCT already reported on paper")
        # A dismissal can be taken back from here (tests/web/test_pages_reopen.py).
        expect(desk.locator(".outcome").get_by_role("button", name="Reopen")).to_be_visible()
        screenshot(desk, "review-dismissed")
        assert_accessible(desk)

        # ...and resolving links the outside id to the patient and fetches the study. Staff
        # who want someone else than the candidates search R4 from the item's page.
        desk.goto(served.url + "/ui/review")
        expect(desk.get_by_text("1 item is open.")).to_be_visible()
        mr_item.get_by_role("link", name=re.compile("MR temporomandibular")).click()
        desk.get_by_label("Name, chart number or birth date").fill("dubois jean")
        desk.get_by_role("button", name="Search R4").click()
        found = desk.get_by_role("table", name="R4 patients matching the search")
        born = demo_catalog.patient(demo_studies.SAME_PERSON_IDS[0]).birth_date
        shown_born = datetime.strptime(born, "%Y%m%d").strftime("%-d %b %Y")  # 5 Nov 1975
        row = found.get_by_role("row").filter(has_text=shown_born)
        expect(row).to_contain_text(str(SAME_PERSON_R4_ID))
        assert_accessible(desk)
        candidate = desk.locator(".candidate").filter(has_text=str(SAME_PERSON_R4_ID))
        candidate.get_by_role("button", name="Resolve: this is the patient").click()
        expect(desk.get_by_role("status").first).to_contain_text("the study is being fetched")
        outcome = desk.locator(".outcome")
        expect(outcome).to_contain_text("linked to Dubois, Jean-Pierre (chart number")
        expect(desk.locator("table.audit")).to_contain_text("resolved a review item")
        screenshot(desk, "review-resolved")

        outcome.get_by_role("link", name="this fetch job").click()
        expect(desk.get_by_role("heading", level=1)).to_have_text(
            "Studies fetched", timeout=FETCH_TIMEOUT_MS
        )
        card = desk.locator(".study").filter(has_text="MR temporomandibular joints")
        expect(card.locator("[data-image-count]")).to_have_text(str(mr.instance_count))
        expect(card.locator(".thumbs img")).to_have_count(len(mr.series))
        desk.wait_for_function(
            "() => [...document.querySelectorAll('.thumbs img')]"
            ".every((img) => img.complete && img.naturalWidth > 0)",
            timeout=FETCH_TIMEOUT_MS,
        )
        expect(card.get_by_role("link", name="OHIF")).to_have_attribute(
            "href", re.compile(re.escape(mr.study_uid))
        )
        screenshot(desk, "review-follow-up-fetched")

        desk.get_by_role("link", name="Audit trail").click()
        rows = desk.locator("table.audit tbody tr")
        expect(rows.filter(has_text="dismissed a review item")).to_contain_text("pages-staff")
        expect(rows.filter(has_text="resolved a review item")).to_contain_text("resolved")
        expect(rows.filter(has_text="linked a PACS patient number")).to_have_count(1)
        screenshot(desk, "audit-trail")
    finally:
        staff.close()
    assert served.gateway.index.study(cbct.study_uid) is None  # the dismissed one stays out
