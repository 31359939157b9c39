"""J0 in a real browser: the connect form from /connect and from the docs, staff review, the e-mailed link."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import staff_page, wait_for_mail, page_width


def fill_connect_form(page, *, inn: str, email: str, coop: str) -> None:
    page.fill("#f-coop_name", coop)
    page.fill("#f-inn", inn)
    page.fill("#f-contact_name", "Сидоров Пётр Иванович")
    page.fill("#f-email", email)
    page.fill("#f-phone", "+7 (912) 000-11-22")
    page.fill("#f-domain", "заря-тест.рф")
    page.check("input[name=union_member][value=yes]")
    page.fill("#f-message", "Просим подключить.")


def test_connect_from_the_portal_page_on_a_phone(live_server, new_page):
    page = new_page(width=375, height=800, is_mobile=True, has_touch=True)
    page.goto(live_server.url + "/connect")
    fill_connect_form(page, inn="7702070139", email="zarya@example.org", coop="Кооператив «Заря»")
    page.fill("#f-inn", "7702070138")  # wrong checksum
    page.click("button[type=submit]")
    expect(page.locator("#err-inn")).to_contain_text("контрольной суммой")
    # What was typed is kept, and the consent error is shown too.
    assert page.input_value("#f-coop_name") == "Кооператив «Заря»"
    assert page.input_value("#f-message") == "Просим подключить."
    expect(page.locator("#err-consent")).to_be_visible()
    page.fill("#f-inn", "7702070139")
    page.check("input[name=consent]")
    page.click("button[type=submit]")
    expect(page.locator("#connect-done")).to_contain_text("принята")
    assert page_width(page) <= 375
    mail = wait_for_mail(live_server.smtp, "zarya@example.org", "принята")
    assert "Заря" in mail.get_content()
    assert [e for e in page.errors if "status of 422" not in e] == []


def test_connect_without_javascript(live_server, browser):
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(live_server.url + "/connect")
        fill_connect_form(page, inn="7743001840", email="nojs@example.org", coop="Кооператив «Без скриптов»")
        page.check("input[name=consent]")
        page.click("button[type=submit]")
        page.wait_for_url(live_server.url + "/connect/done")
        assert "принята" in page.inner_text("#connect-done")
    finally:
        context.close()


def test_connect_from_the_docs_page_then_staff_sends_the_link(live_server, new_page):
    page = new_page()
    page.goto(live_server.url + "/docs/connect/")
    page.wait_for_selector("#connect-form form")  # the form came from the portal
    fill_connect_form(page, inn="7728168971", email="docs@example.org", coop="Кооператив «Из документации»")
    page.check("input[name=consent]")
    page.click("#connect-form button[type=submit]")
    expect(page.locator("#connect-done")).to_contain_text("принята")
    assert page.url == live_server.url + "/docs/connect/"
    assert page.errors == []

    staff = staff_page(live_server, new_page, "reviewer@example.org", "reviewer password")
    staff.click("text=Заявки на подключение")
    staff.wait_for_url("**/staff/connect-requests*")
    staff.wait_for_load_state("load")  # htmx is listening: under load the search typed earlier could go unheard
    staff.fill("#q", "ИЗ ДОКУМЕНТАЦИИ")  # Cyrillic search, any case
    expect(staff.locator("#results tbody tr")).to_have_count(1)
    staff.click("#results a")
    staff.click("text=Отправить ссылку на регистрацию")
    expect(staff.locator(".notice")).to_contain_text("Ссылка на регистрацию отправлена")

    mail = wait_for_mail(live_server.smtp, "docs@example.org", "Ссылка на регистрацию")
    link = re.search(r"http://127\.0\.0\.1:\d+/join/[A-Za-z0-9_-]+", mail.get_content()).group(0)
    visitor = new_page(width=375, height=800)
    visitor.goto(link)
    expect(visitor.locator("h1")).to_contain_text("Регистрация в ПК «ВОСХОД»")
    assert "Из документации" in visitor.content()


def test_pricing_calculator_updates_as_you_type(live_server, new_page):
    page = new_page(width=375, height=800)
    page.goto(live_server.url + "/pricing")
    page.fill("#registrations", "60")
    page.fill("#packages", "50")
    expect(page.locator('[data-k="total"]')).to_have_text("1\u00a0700,00\u00a0₽")
    page.fill("#packages", "x")
    expect(page.locator("#err-packages")).to_contain_text("целое число")
    assert [e for e in page.errors if "status of 422" not in e] == []


def test_a_refused_htmx_post_is_explained_at_the_form(live_server, new_page):
    """A stale page (its CSRF token no longer matches) gets a Russian message instead of a silent button."""
    page = new_page()
    page.goto(live_server.url + "/connect")
    page.context.clear_cookies()  # the CSRF cookie is gone: the POST is refused with 403
    fill_connect_form(page, inn="7710140679", email="stale@example.org", coop="Кооператив «Устаревший»")
    page.check("input[name=consent]")
    page.click("button[type=submit]")
    expect(page.locator(".htmx-error")).to_contain_text("Страница устарела")
    assert page.input_value("#f-coop_name") == "Кооператив «Устаревший»"
