"""The pages in the practice's words, on a real `serve`, the real Orthanc and an R4 practice
database: whose images a job page shows, a review item a receptionist can decide without
knowing what a score is, the fallback procedure's configured contacts, and the audit of who
opened what."""

from __future__ import annotations

import csv
import io
import json
import re

import demo_practice
import demo_studies
from pages_testkit import assert_accessible, practice, screenshot
from playwright.sync_api import Page, expect

SAME_PERSON_R4_ID = demo_practice.r4_patient_id(demo_studies.SAME_PERSON_IDS[0])  # 1003
LATIN1_R4_ID = demo_practice.r4_patient_id(demo_studies.LATIN1_PATIENT_ID)  # 1001: Müller^Zoë
FETCH_TIMEOUT_MS = 120_000
# The one way pages say when: "1 Dec 2026, 15:47".
MOMENT = r"\d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4}, \d{2}:\d{2}"
# What a page in the practice's words never shows.
JARGON = re.compile(r"\bscore\b|\bIssuer\b|\(\d\.\d\d\)|\d+ %|auto-link|threshold", re.I)


def _practice(serve_pages, orthanc, tmp_path, **overrides):
    return serve_pages(orthanc, **practice(tmp_path), **overrides)


def _fetch_by_r4(page: Page, r4_id: int, modalities: str = "") -> str:
    page.get_by_label("Patient id in R4").check()
    page.get_by_label("Patient id", exact=True).fill(str(r4_id))
    page.get_by_label("Modalities").fill(modalities)
    page.get_by_role("button", name="Fetch studies").click()
    expect(page).to_have_url(re.compile(r"/ui/jobs/[0-9a-f-]{36}$"))
    return page.url.rsplit("/", 1)[1]


def test_the_job_page_says_whose_images_these_are_and_lists_earlier_fetches(
    page, serve_pages, orthanc_running, tmp_path
):
    served = _practice(serve_pages, orthanc_running, tmp_path)
    served.login(page, "clinician", "/ui/fetch")
    first = _fetch_by_r4(page, LATIN1_R4_ID)
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Studies fetched", timeout=FETCH_TIMEOUT_MS
    )
    page.reload()  # the identity block is drawn with the page, from the files received

    identity = page.get_by_role("region", name="Whose images these are")
    r4 = identity.locator(".r4-ident")
    expect(r4.locator(".ident-name")).to_have_text("Müller, Zoë")
    expect(r4).to_contain_text("Chart number")
    expect(r4).to_contain_text(demo_practice.chart_number(_person(LATIN1_R4_ID)))
    # The PACS's own record, decoded from the files' Latin-1 (ISO_IR 100) character set.
    pacs = identity.locator(".pacs-ident")
    expect(pacs.locator(".ident-name")).to_have_text("Müller, Zoë")
    expect(pacs).to_contain_text("12 Mar 1984")
    expect(pacs).to_contain_text("female")
    expect(pacs).to_contain_text(demo_studies.LATIN1_PATIENT_ID)
    expect(page.locator(".meta")).to_contain_text(re.compile(MOMENT))
    expect(page.get_by_role("heading", name="Earlier fetches for this patient")).to_be_visible()
    expect(page.locator(".earlier")).to_contain_text("the first fetch asked for this patient")
    assert_accessible(page)
    screenshot(page, "words-job-identity")

    page.goto(served.url + "/ui/fetch")
    _fetch_by_r4(page, LATIN1_R4_ID)
    earlier = page.locator(".earlier li")
    expect(earlier).to_have_count(1)
    expect(earlier.get_by_role("link")).to_have_attribute("href", f"/ui/jobs/{first}")
    expect(earlier).to_contain_text(re.compile("Asked " + MOMENT))


def test_a_clinician_sees_when_the_next_try_is_in_one_format_and_no_network_address(
    browser, page, serve_pages
):
    served = serve_pages(None, retry_initial_delay=120.0, retry_max_delay=120.0)
    served.login(page, "clinician", "/ui/fetch")
    page.get_by_label("Patient id on the PACS").check()
    page.get_by_label("Patient id", exact=True).fill("R4-1001")
    page.get_by_role("button", name="Fetch studies").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("The PACS cannot be reached")
    sentence = page.locator(".sentence")
    expect(sentence).to_contain_text(re.compile("tries again by itself at " + MOMENT))
    text = page.locator("main").inner_text()
    assert "in about" not in text and "Next try" not in text, text
    assert not re.search(r"\b\d{1,3}(\.\d{1,3}){3}:\d+\b|127\.0\.0\.1|localhost", text), text
    screenshot(page, "words-job-waiting")

    # Staff see the whole message, address included, for IT.
    staff = browser.new_context(viewport={"width": 768, "height": 1024})
    try:
        desk = staff.new_page()
        served.login(desk, "staff", page.url.removeprefix(served.url))
        expect(desk.locator(".detail")).to_contain_text("127.0.0.1:")
    finally:
        staff.close()


def test_staff_decide_a_review_item_in_plain_words_and_resolve_by_chart_number(
    browser, page, serve_pages, orthanc_running, tmp_path
):
    served = _practice(serve_pages, orthanc_running, tmp_path)
    served.login(page, "clinician", "/ui/fetch")
    _fetch_by_r4(page, SAME_PERSON_R4_ID, "MR, CT")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "A staff member needs to check this fetch", timeout=FETCH_TIMEOUT_MS
    )

    staff = browser.new_context(viewport={"width": 768, "height": 1024})
    staff.set_default_timeout(20_000)
    desk = staff.new_page()
    try:
        served.login(desk, "staff", "/ui/review")
        queue_text = desk.locator("main").inner_text()
        assert not JARGON.search(queue_text), JARGON.search(queue_text)
        mr_item = desk.locator("article.review-item").filter(has_text="MR temporomandibular")
        expect(mr_item.locator(".reasons")).to_contain_text(
            "found by name and birth date under another clinic's patient number"
        )
        expect(mr_item.locator(".pacs-side")).to_contain_text(
            f"{demo_studies.SAME_PERSON_IDS[1]} (numbered by {demo_studies.OUTSIDE})"
        )
        candidate = mr_item.locator(".candidate").first
        expect(candidate.get_by_role("heading")).to_contain_text("Very alike")
        expect(candidate.locator(".points")).to_contain_text("Same birth date")
        expect(candidate.locator(".points")).to_contain_text("Family name: the same")
        # The other waiting study of the same PACS patient goes with it: said before.
        expect(mr_item.locator(".sibling-notice")).to_contain_text(
            "1 other waiting item of the same PACS patient will be resolved with it"
        )
        screenshot(desk, "words-review-queue")

        mr_item.get_by_role("link", name=re.compile("MR temporomandibular")).click()
        look = desk.get_by_role("region", name="A look at the images")
        expect(look).to_contain_text("What the imaging system says this study holds")
        expect(look.locator("table.series tbody tr").first).to_be_visible()
        item_text = desk.locator("main").inner_text()
        assert not JARGON.search(item_text), JARGON.search(item_text)
        assert "R4 patient id" not in item_text

        chart = demo_practice.chart_number(_person(SAME_PERSON_R4_ID))
        desk.get_by_label("Name, chart number or birth date").fill(chart)
        desk.get_by_role("button", name="Search R4").click()
        found = desk.get_by_role("table", name="R4 patients matching the search")
        row = found.get_by_role("row").filter(has_text="Dubois")
        expect(row).to_contain_text(chart)
        expect(row).to_contain_text("5 Nov 1975")
        assert_accessible(desk)
        screenshot(desk, "words-review-item")
        row.get_by_role("button", name=re.compile("Resolve with")).click()
        expect(desk.get_by_role("status").first).to_contain_text(
            "1 other item of the same PACS patient was resolved with it"
        )
        expect(desk.locator(".outcome")).to_contain_text(
            f"linked to Dubois, Jean-Pierre (chart number {chart}, born 5 Nov 1975)"
        )
        screenshot(desk, "words-review-resolved")
    finally:
        staff.close()


def test_the_fallback_page_lists_the_configured_contacts_and_when_each_pacs_was_reached(
    page, serve_pages, orthanc_running, monkeypatch
):
    monkeypatch.setenv(
        "PACS_GATEWAY_CONTACTS",
        json.dumps(
            {
                "it": {"name": "Sam Lee, Riverside IT", "phone": "+44 20 7946 0001"},
                "radiology": {
                    "name": "Northside Radiology",
                    "phone": "+44 20 7946 0002",
                    "hours": "Mon-Fri 8:00-18:00",
                },
            }
        ),
    )
    served = serve_pages(orthanc_running)
    served.login(page, "clinician", "/ui/fetch")
    page.get_by_label("Patient id on the PACS").check()
    page.get_by_label("Patient id", exact=True).fill(demo_studies.LATIN1_PATIENT_ID)
    page.get_by_role("button", name="Fetch studies").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Studies fetched", timeout=FETCH_TIMEOUT_MS
    )

    page.goto(served.url + "/ui/fallback")  # public, but the menu is the logged-in one
    contacts = page.get_by_role("region", name="The numbers")
    expect(contacts.locator('[data-contact="it"]')).to_contain_text("Sam Lee, Riverside IT")
    expect(contacts.locator('[data-contact="it"]').get_by_role("link")).to_have_attribute(
        "href", "tel:+442079460001"
    )
    expect(contacts.locator('[data-contact="radiology"]')).to_contain_text("Mon-Fri 8:00-18:00")
    expect(contacts.locator('[data-contact="pacs_vendor"]')).to_contain_text(
        "Not set: nobody has entered this contact"
    )
    reached = page.get_by_role("region", name="When the gateway last reached each PACS")
    expect(reached).to_contain_text(re.compile("PACS “test-orthanc”: " + MOMENT))
    text = page.locator("main").inner_text()
    assert "<name>" not in text and "<phone>" not in text and "<gateway" not in text
    assert_accessible(page)
    screenshot(page, "words-fallback")


def test_the_audit_trail_shows_who_opened_a_job_page_by_patient_and_key_and_exports_csv(
    browser, page, serve_pages, orthanc_running
):
    served = serve_pages(orthanc_running)
    served.login(page, "clinician", "/ui/fetch")
    page.get_by_label("Patient id on the PACS").check()
    page.get_by_label("Patient id", exact=True).fill(demo_studies.LATIN1_PATIENT_ID)
    page.get_by_role("button", name="Fetch studies").click()
    expect(page).to_have_url(re.compile(r"/ui/jobs/[0-9a-f-]{36}$"))
    job_id = page.url.rsplit("/", 1)[1]

    staff = browser.new_context(viewport={"width": 768, "height": 1024})
    staff.set_default_timeout(20_000)
    desk = staff.new_page()
    try:
        served.login(desk, "staff", "/ui/audit")
        desk.get_by_label("Patient number (PACS or R4)").fill(demo_studies.LATIN1_PATIENT_ID)
        desk.get_by_label("Key name").fill("pages-clinician")
        desk.get_by_role("button", name="Show").click()
        rows = desk.locator("table.audit tbody tr")
        submitted = rows.filter(has_text="asked for a fetch")
        expect(submitted).to_have_count(1)
        opened = rows.filter(has_text="opened a job page")
        expect(opened).to_have_count(1)
        expect(opened).to_contain_text("pages-clinician")
        expect(opened).to_contain_text(demo_studies.LATIN1_PATIENT_ID)
        expect(opened.get_by_role("link")).to_have_attribute("href", f"/ui/jobs/{job_id}")
        # Nothing else about the patient: no name, no birth date.
        audit_text = desk.locator("table.audit").inner_text()
        assert "Müller" not in audit_text and "1984" not in audit_text
        assert_accessible(desk)
        screenshot(desk, "words-audit")

        desk.get_by_label("Key name").fill("pages-staff")
        desk.get_by_role("button", name="Show").click()
        expect(
            desk.locator("table.audit tbody tr").filter(has_text="opened a job page")
        ).to_have_count(0)

        desk.get_by_label("Key name").fill("")
        desk.get_by_label("Patient number (PACS or R4)").fill(demo_studies.LATIN1_PATIENT_ID)
        desk.get_by_role("button", name="Show").click()
        with desk.expect_download() as download:
            desk.get_by_role("link", name="Download these as CSV").click()
        table = list(csv.DictReader(io.StringIO(download.value.path().read_text("utf-8"))))
        actions = {(r["who"], r["action"]) for r in table}
        assert ("pages-clinician", "view.job") in actions
        assert ("pages-clinician", "fetch.submit") in actions
        assert {r["pacs_patient_id"] for r in table} == {demo_studies.LATIN1_PATIENT_ID}
    finally:
        staff.close()


def _person(r4_id: int) -> demo_studies.DemoPatient:
    return next(
        p for p in demo_practice.demo_people() if demo_practice.r4_patient_id(p.patient_id) == r4_id
    )
