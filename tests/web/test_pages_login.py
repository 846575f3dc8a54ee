"""Logging in to the pages with an API key, the dashboard behind it, logging out, and a key
revoked while its session is open."""

from __future__ import annotations

import re

from pages_testkit import assert_accessible, screenshot
from playwright.sync_api import expect

from gateway.core.keys import KeyStore


def test_a_wrong_key_is_refused_and_the_right_one_opens_the_dashboard(
    page, serve_pages, orthanc_running
):
    served = serve_pages(orthanc_running)

    page.goto(served.url + "/ui/")
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    page.get_by_label("API key").fill("pgw_0123456789abcdef_not-the-right-secret")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("This API key is not valid")
    expect(page.get_by_label("API key")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "login-wrong-key")
    assert_accessible(page)
    page.goto(served.url + "/ui/jobs")
    expect(page).to_have_url(re.compile(r"/ui/login\?next=%2Fui%2Fjobs$"))  # still nobody

    page.get_by_label("API key").fill(served.keys["clinician"])
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(served.url + "/ui/jobs")  # back where the login interrupted
    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    pacs_row = page.get_by_role("row", name=re.compile("PACS “test-orthanc”"))
    expect(pacs_row).to_contain_text("reachable")
    expect(pacs_row).to_contain_text(re.compile(r"\d+ ms"))
    expect(page.get_by_role("link", name=re.compile(r"\d+ succeeded"))).to_be_visible()
    expect(page.locator("[data-review-open]")).to_have_text("0")
    # A clinician's menu offers no review pages.
    expect(page.get_by_role("link", name="Review queue")).to_have_count(0)
    screenshot(page, "dashboard-clinician")
    assert_accessible(page)

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    expect(page.get_by_role("status")).to_have_text("You have logged out.")
    page.goto(served.url + "/ui/")
    expect(page).to_have_url(re.compile(r"/ui/login$"))


def test_revoking_the_key_ends_its_page_session(page, serve_pages):
    served = serve_pages()
    served.login(page, "staff", "/ui/jobs")
    expect(page.get_by_role("heading", name="Fetch jobs")).to_be_visible()

    KeyStore(served.gateway.engine).revoke("pages-staff")

    page.reload()
    expect(page).to_have_url(re.compile(r"/ui/login\?next=%2Fui%2Fjobs$"))
    expect(page.get_by_role("heading", name="Fetch jobs")).to_have_count(0)


def test_the_login_page_does_not_follow_a_next_address_off_the_pages(page, serve_pages):
    served = serve_pages()
    page.goto(served.url + "/ui/login?next=//evil.example/x")
    page.get_by_label("API key").fill(served.keys["clinician"])
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(served.url + "/ui/")
