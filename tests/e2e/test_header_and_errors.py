"""In the browser: who is logged in and «Выйти» on every page; a refused form's summary takes the focus and
its links lead to the fields."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import shot, staff_page


def test_the_error_summary_takes_the_focus_and_links_to_the_fields(live_server, new_page):
    page = new_page()
    page.goto(live_server.url + "/connect")
    page.fill("#f-coop_name", "Кооператив «Ромашка»")
    page.click("button[type=submit]")
    summary = page.locator("[data-error-summary]")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()
    shot(page, "connect-error-summary")
    expect(summary.locator('a[href="#f-inn"]')).to_contain_text("ИНН кооператива")
    summary.locator('a[href="#f-inn"]').click()
    assert page.evaluate("location.hash") == "#f-inn"
    assert page.input_value("#f-coop_name") == "Кооператив «Ромашка»"  # nothing typed is lost
    # Chromium logs every 4xx answer as a failed resource; nothing else may be an error (htmx swaps the 422).
    assert [e for e in page.errors if "status of 422" not in e] == []


def test_who_is_logged_in_and_logout_are_on_every_page(live_server, new_page):
    page = staff_page(live_server, new_page, email="header-staff@example.org")
    for path in ("/", "/pricing", "/verify", "/connect"):
        page.goto(live_server.url + path)
        header = page.locator("header .whoami")
        expect(header).to_contain_text("header-staff@example.org")
        expect(header.locator("button", has_text="Выйти")).to_be_visible()
    shot(page, "header-staff-connect")
    page.locator("header .whoami button", has_text="Выйти").click()
    page.wait_for_url(re.compile(r"/staff/login$"))
    expect(page.locator("header .whoami")).to_have_count(0)
    page.goto(live_server.url + "/staff/")
    page.wait_for_url(re.compile(r"/staff/login\?next="))
