"""The layout in a real browser, at desktop and phone widths."""

from __future__ import annotations

import os
import re

import pytest

from tests.e2e.conftest import page_width


@pytest.mark.parametrize("width", [1280, 375])
def test_layout_loads_without_console_errors(live_server, new_page, width):
    page = new_page(width=width, height=800, is_mobile=width < 600, has_touch=width < 600)
    page.goto(live_server.url + "/")
    assert page.locator("h1").first.inner_text().startswith("Платформа «Кооперативная экономика»")
    # htmx came from the (routed) CDN and passed the SRI check.
    page.wait_for_function("window.htmx !== undefined")
    assert page.evaluate("htmx.version") == "2.0.11"
    nav = [a.inner_text() for a in page.locator(".site-nav a").all()]
    assert nav == ["Главная", "Документация", "Подключение", "Войти"]
    for a in page.locator(".site-nav a").all():
        assert a.is_visible()
    # Nothing wider than the screen.
    assert page_width(page) <= width
    page.screenshot(path=str(live_server.data_dir.parent / f"home-{width}.png"), full_page=True)
    if os.environ.get("PORTAL_SCREENSHOTS"):
        page.screenshot(path=f"{os.environ['PORTAL_SCREENSHOTS']}/home-{width}.png", full_page=True)
    assert page.errors == []


def test_staff_login_in_the_browser(live_server, new_page):
    r = live_server.portal("create-staff", "browser@example.org", "--password", "browser password")
    assert r.returncode == 0, r.stderr
    page = new_page(width=375, height=800)
    page.goto(live_server.url + "/staff/")
    assert "/staff/login" in page.url
    page.fill("#email", "browser@example.org")
    page.fill("#password", "wrong password")
    page.click("button[type=submit]")
    page.wait_for_selector(".form-error")
    assert "Неверная почта или пароль" in page.inner_text(".form-error")
    assert page.input_value("#email") == "browser@example.org"
    page.fill("#password", "browser password")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"^http://[^/]+/staff/?$"))
    assert "Консоль сотрудников" in page.inner_text("h1")
    # Chromium itself notes every 4xx answer; htmx must not log the 422 form re-render as an error.
    assert [e for e in page.errors if "status of 422" not in e] == []


def test_docs_are_served(live_server, new_page):
    page = new_page()
    page.goto(live_server.url + "/docs/")
    assert "ВОСХОД" in page.content()
    assert page.errors == []
